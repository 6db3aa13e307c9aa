/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Notices when the k0s binary is replaced (autopilot renames a new binary over it, an operator
 * copies one over it, a package manager writes it): inotify on the binary's directory, filtered to
 * its name. The handler is called once the changes have been quiet for BINARY_WATCH_QUIET_USEC,
 * so a `cp` in progress (ETXTBSY on exec) is not probed half-written.
 */

#include <systemd/sd-event.h>

#include "macro.h"

#define BINARY_WATCH_QUIET_USEC (100 * USEC_PER_MSEC)

typedef struct BinaryWatch BinaryWatch;
typedef void (*BinaryWatchHandler)(BinaryWatch *w, void *userdata);

/* path: the binary as configured (k0s.binary). The directory must exist. */
int binary_watch_new(const char *path, BinaryWatchHandler handler, void *userdata,
                     BinaryWatch **ret);
int binary_watch_attach(BinaryWatch *w, sd_event *e);
BinaryWatch *binary_watch_free(BinaryWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(BinaryWatch *, binary_watch_free);
