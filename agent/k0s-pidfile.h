/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The k0s pidfile ("PID\nSTARTTIME\nHASH\n", STARTTIME = /proc/PID/stat field 22) and the /proc
 * checks that tell whether the process it names is the k0s an agent started. Pure look-ups: no
 * signal is ever sent from here.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Put into k0s's environment; adoption requires it (like k0s's own _K0S_MANAGED=yes). */
#define SUPERVISOR_MARKER_ENV "K0S_TSAGENT_MANAGED=1"

/* Caps for what we read from the pidfile and /proc (environ can be as large as ARG_MAX). */
#define K0S_PIDFILE_MAX 4096

/* Parses (and modifies) content. 0, or -EBADMSG with *ret_reason "malformed". */
int k0s_pidfile_parse(char *content, pid_t *ret_pid, uint64_t *ret_starttime, char **ret_hash);
/* Atomically (temporary file + rename). */
int k0s_pidfile_write(const char *path, pid_t pid, uint64_t starttime, const char *hash);

/* From /proc/PID/stat: field 3, the state ('Z' zombie), and field 22, the start time. */
int k0s_proc_get_stat(pid_t pid, char *ret_state, uint64_t *ret_starttime);

/*
 * Is PID (started at starttime) the k0s an earlier agent started: a thread-group leader whose
 * /proc/PID/exe is `binary` (also "... (deleted)" after an upgrade replaced it) and whose
 * environment holds SUPERVISOR_MARKER_ENV? Returns 1 yes; 0 no, it is gone or another process
 * (*ret_reason says which: the pidfile is stale); -EAGAIN when it is a child of an agent that has
 * not exec'd k0s yet; another -errno when it could not be told (/proc refused a read). On every
 * return but 1, *ret_reason is set.
 */
int k0s_proc_check(pid_t pid, uint64_t starttime, const char *binary, const char **ret_reason);

/* What a pidfile names, pinned: pidfd is -1 where the kernel has no pidfds (< 5.3). */
typedef struct K0sCandidate {
        pid_t pid;
        uint64_t starttime;
        char *hash;
        int pidfd;
} K0sCandidate;

void k0s_candidate_done(K0sCandidate *c);

/*
 * Read the pidfile, pin its process with a pidfd, then verify it (k0s_proc_check(), and the
 * pinned process still alive). Returns 1 (c names our k0s), 0 (no pidfile: *ret_reason NULL;
 * stale: *ret_reason says why) or -errno (undecidable, *ret_reason says which step). Initialize
 * c with pidfd = -1; free it with k0s_candidate_done() whatever the result.
 */
int k0s_pidfile_inspect(const char *pidfile, const char *binary, K0sCandidate *c,
                        const char **ret_reason);
