/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `k0s version`, asynchronously: stat the binary (its BinaryId), spawn it as a clean child (fds
 * 0-2 only), read stdout (<= 4 KiB), time out after timeout_usec.
 */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "facts.h"
#include "macro.h"

typedef struct VersionProbe VersionProbe;

/* done gets r < 0 on failure, else the trimmed first line of stdout. The probe may be freed in
 * done; output and version_probe_get_binary_id() are valid until then. */
typedef void (*VersionProbeHandler)(VersionProbe *p, int r, const char *output, void *userdata);

int version_probe_start(sd_event *e, const char *binary, uint64_t timeout_usec,
                        VersionProbeHandler done, void *userdata, VersionProbe **ret);

/* The identity of the binary that was probed, taken right before it was spawned: hand it on in
 * K0sSpec.binary_id, so a start of a binary replaced since is refused. */
const BinaryId *version_probe_get_binary_id(const VersionProbe *p);

VersionProbe *version_probe_free(VersionProbe *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(VersionProbe *, version_probe_free);
