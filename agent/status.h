/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * state_dir/status.json: the agent writes it (atomically) whenever its state changes;
 * `k0s-tsagent status [--json]` reads it and prints a table or the JSON.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#include "macro.h"

#define STATUS_FILE_NAME "status.json"

/* Write root as state_dir/status.json; 0 unchanged, 1 written, -errno. */
int status_write(const char *state_dir, const cJSON *root);

/* Read state_dir/status.json and print it: JSON as written, or a human table. uptime is computed
 * now from k0s.started. Returns 0, or -errno (-ENOENT: agent not running / never wrote it). */
int status_show(const char *state_dir, bool json, FILE *out);

/* RFC 3339 UTC with seconds, e.g. "2026-11-26T23:40:01Z", for a CLOCK_REALTIME usec value. */
const char *format_timestamp(char buf[static 32], uint64_t realtime_usec);
