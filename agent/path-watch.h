/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Watch a directory that may not exist yet, without polling: inotify on the directory when it
 * exists, else on its nearest existing ancestor, moving down (or up) as components appear (or
 * go). The handler runs whenever the directory appears or disappears and on every event inside
 * it that matches the caller's mask; it then looks at the file system itself.
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct PathWatch PathWatch;
typedef void (*PathWatchHandler)(PathWatch *w, void *userdata);

/* dir must be absolute. mask: inotify events wanted inside dir (IN_CREATE, IN_MOVED_TO, ...). */
int path_watch_new(const char *dir, uint32_t mask, PathWatchHandler handler, void *userdata,
                   PathWatch **ret);
int path_watch_attach(PathWatch *w, sd_event *e);
/* true when the watched directory itself exists (as of the last event). */
bool path_watch_dir_exists(PathWatch *w);
const char *path_watch_dir(PathWatch *w);
PathWatch *path_watch_free(PathWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(PathWatch *, path_watch_free);
