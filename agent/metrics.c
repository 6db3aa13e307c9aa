/* SPDX-License-Identifier: MIT */
/*
 * Owns the metrics textfile: when to write it (a value changed, at most once a second, only
 * once its directory exists) and the write itself through atomic-file. node_exporter reads
 * only *.prom files, and atomic-file's temp name does not end in .prom, so a scrape sees the
 * old file or the new one. What the values are is the manager's (it fills the snapshot).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "atomic-file.h"
#include "backoff.h"
#include "event-util.h"
#include "log.h"
#include "metrics.h"
#include "path-watch.h"
#include "util.h"

#define METRICS_MIN_INTERVAL_USEC USEC_PER_SEC
#define METRICS_RETRY_MAX_USEC (60 * USEC_PER_SEC)

struct Metrics {
        char *path;
        sd_event *event;
        PathWatch *dir_watch; /* the textfile directory, or its nearest existing ancestor */
        sd_event_source *timer; /* the trailing write, or the retry after a failure */

        MetricsSnapshot pending; /* the last snapshot handed in */
        char *key; /* its rendering with our own counters zeroed: "did anything change?" */
        bool dirty; /* pending is not on disk yet */
        uint64_t last_write_usec; /* CLOCK_MONOTONIC of the last attempt, 0 = none */
        Backoff retry;
        bool retrying;

        uint64_t writes, failures;
        int last_error; /* logged once per distinct error */
};

int metrics_new(const char *path, Metrics **ret) {
        if (isempty(path)) {
                *ret = NULL;
                return 0;
        }
        if (path[0] != '/' || !strchr(path + 1, '/') || path[strlen(path) - 1] == '/')
                return -EINVAL;
        Metrics *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->path = strdup(path);
        if (!m->path) {
                free(m);
                return -ENOMEM;
        }
        metrics_snapshot_init(&m->pending);
        backoff_init(&m->retry, METRICS_MIN_INTERVAL_USEC, METRICS_RETRY_MAX_USEC);
        *ret = m;
        return 0;
}

static uint64_t now_monotonic(Metrics *m) {
        uint64_t t = 0;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &t);
        return t;
}

static void metrics_schedule(Metrics *m);

static void metrics_write(Metrics *m) {
        MetricsSnapshot s = m->pending;
        _cleanup_free_ char *text = NULL;

        /* Our own line counts the write that puts it on disk. */
        s.file_writes[METRICS_FILE_METRICS] = m->writes + 1;
        s.file_write_failures[METRICS_FILE_METRICS] = m->failures;
        int r = metrics_render(&s, &text);
        if (r >= 0)
                r = atomic_file_write(m->path, text, strlen(text), 0644);
        m->last_write_usec = now_monotonic(m);
        if (r >= 0) {
                m->writes++;
                m->dirty = false;
                m->retrying = false;
                backoff_reset(&m->retry);
                if (m->last_error != 0)
                        log_info("Wrote %s again.", m->path);
                m->last_error = 0;
                return;
        }
        m->failures++;
        if (r != m->last_error)
                log_warning_errno(r, "Failed to write the metrics file %s, will retry: %m",
                                  m->path);
        m->last_error = r;
        m->retrying = true;
        metrics_schedule(m);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Metrics *m = userdata;
        if (m->dirty && path_watch_dir_exists(m->dir_watch))
                metrics_write(m);
        return 0;
}

/* Write now if allowed, else arm the one timer for the earliest time it is. */
static void metrics_schedule(Metrics *m) {
        if (!m->dirty || !m->event || !path_watch_dir_exists(m->dir_watch))
                return; /* the directory watch calls back when it appears */

        uint64_t now = now_monotonic(m), delay;
        if (m->retrying)
                delay = backoff_next(&m->retry);
        else if (m->last_write_usec == 0 ||
                 now >= usec_add(m->last_write_usec, METRICS_MIN_INTERVAL_USEC)) {
                metrics_write(m);
                return;
        } else
                delay = usec_add(m->last_write_usec, METRICS_MIN_INTERVAL_USEC) - now;
        int r = event_timer_arm(m->event, &m->timer, delay, 10 * USEC_PER_MSEC, !m->retrying,
                                on_timer, m, "metrics-write");
        if (r < 0)
                log_warning_errno(r, "Failed to arm the metrics timer, ignoring: %m");
}

static void on_dir(PathWatch *w, void *userdata) {
        Metrics *m = userdata;
        if (!path_watch_dir_exists(w))
                return;
        /* The directory (re)appeared, or something in it changed: a file of ours that someone
         * removed comes back with the current values. */
        if (!m->dirty && m->writes > 0 && access(m->path, F_OK) < 0 && errno == ENOENT)
                m->dirty = true;
        if (m->retrying) {
                m->retrying = false;
                backoff_reset(&m->retry);
                event_timer_disarm(m->timer);
        }
        metrics_schedule(m);
}

int metrics_attach(Metrics *m, sd_event *e) {
        if (!m)
                return 0;
        _cleanup_free_ char *dir = strdup(m->path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        slash[slash == dir ? 1 : 0] = 0;
        m->event = sd_event_ref(e);
        int r = path_watch_new(dir, IN_DELETE | IN_MOVED_FROM, on_dir, m, &m->dir_watch);
        if (r < 0)
                return r;
        r = path_watch_attach(m->dir_watch, e);
        if (r < 0)
                return log_error_errno(r, "Failed to watch %s: %m", dir);
        if (!path_watch_dir_exists(m->dir_watch))
                log_info("%s does not exist (yet): the metrics file is written once it does.", dir);
        metrics_schedule(m);
        return 0;
}

static char *metrics_key(const MetricsSnapshot *s) {
        MetricsSnapshot k = *s;
        char *text = NULL;

        k.file_writes[METRICS_FILE_METRICS] = 0;
        k.file_write_failures[METRICS_FILE_METRICS] = 0;
        return metrics_render(&k, &text) < 0 ? NULL : text;
}

int metrics_update(Metrics *m, const MetricsSnapshot *s) {
        if (!m)
                return 0;
        char *key = metrics_key(s);
        if (!key)
                return -ENOMEM;
        if (m->key && streq(m->key, key)) {
                free(key);
                return 0; /* nothing changed: the file keeps its mtime */
        }
        free(m->key);
        m->key = key;
        m->pending = *s;
        m->dirty = true;
        if (!m->retrying)
                metrics_schedule(m);
        return 1;
}

void metrics_flush(Metrics *m) {
        if (m && m->dirty && m->event && path_watch_dir_exists(m->dir_watch))
                metrics_write(m);
}

uint64_t metrics_get_writes(Metrics *m) {
        return m ? m->writes : 0;
}

uint64_t metrics_get_write_failures(Metrics *m) {
        return m ? m->failures : 0;
}

Metrics *metrics_free(Metrics *m) {
        if (!m)
                return NULL;
        sd_event_source_disable_unref(m->timer);
        path_watch_free(m->dir_watch);
        sd_event_unref(m->event);
        free(m->key);
        free(m->path);
        free(m);
        return NULL;
}
