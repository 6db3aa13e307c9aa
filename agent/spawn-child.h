/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A clean child for k0s and for `k0s version`: default signal dispositions, an empty signal
 * mask, its own session, stdin from /dev/null, stdout/stderr as given, exactly fds 0-2 (every
 * other descriptor is closed, whatever a library forgot to mark O_CLOEXEC), and an environment
 * built from the agent's minus systemd's per-service variables.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "facts.h"

typedef struct SpawnSpec {
        char *const *argv; /* argv[0] is the file executed (an absolute path) */
        char *const *env; /* the whole environment (spawn_build_env()) */
        int stdout_fd; /* -1: /dev/null */
        int stderr_fd; /* -1: /dev/null */
        /* If set, the child writes "PID\nSTARTTIME\n<pidfile_tail>" to pidfile (through
         * pidfile_tmp and rename(), so the file is whole or absent) before it execs: whatever
         * instant the agent dies, a running child is named in the pidfile. A failed write fails
         * the spawn (nothing is exec'd). */
        const char *pidfile;
        const char *pidfile_tmp;
        const char *pidfile_tail;
} SpawnSpec;

/*
 * The agent's environment, minus systemd's per-service protocol variables (NOTIFY_SOCKET,
 * WATCHDOG_*, LISTEN_*, INVOCATION_ID, ...: k0s's children, e.g. etcd, would talk to the agent's
 * notify socket), minus names set by extra or by more (programs take the first of duplicate
 * names), plus extra's entries (except names more sets), then more's. NULL on OOM.
 */
char **spawn_build_env(char *const *extra, const char *const *more);

/* Fork, set up the child as above, exec. Returns 0 and the pid once the child has exec'd, or
 * -errno of what failed in the child (ENOENT for a missing binary, the pidfile's error, ...), in
 * which case the child is reaped already. */
int spawn_child(const SpawnSpec *spec, pid_t *ret_pid);

/* Identity of the file at path (follows symlinks, like exec does). */
int binary_id_from_path(const char *path, BinaryId *ret);
