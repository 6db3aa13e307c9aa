/* SPDX-License-Identifier: MIT */
#pragma once

/* Parse what `k0s version` prints and decide which containerd drop-in format k0s expects. */

#include <errno.h>
#include <stdbool.h>

typedef enum ContainerdFormat {
        CONTAINERD_FORMAT_V2, /* k0s <= 1.35: containerd 1.7, version = 2, grpc.v1.cri section */
        CONTAINERD_FORMAT_V3, /* k0s >= 1.36: containerd 2.x, version = 3, cri.v1.images */
        _CONTAINERD_FORMAT_MAX,
        _CONTAINERD_FORMAT_INVALID = -EINVAL,
} ContainerdFormat;

const char *containerd_format_to_string(ContainerdFormat f); /* "v2", "v3" */

typedef struct K0sVersion {
        unsigned major, minor, patch;
        char text[64]; /* normalised, with a leading 'v', e.g. "v1.35.7+k0s.0" */
} K0sVersion;

/* Accepts "v1.35.7+k0s.0", "1.36.1+k0s.0", "v1.36.1-rc.1+k0s.0", surrounding whitespace and a
 * trailing newline; only the first line is looked at. -EINVAL on anything else. */
int k0s_version_parse(const char *s, K0sVersion *ret);

/* v >= major.minor.patch (pre-releases of that patch count as it). */
bool k0s_version_at_least(const K0sVersion *v, unsigned major, unsigned minor, unsigned patch);

/* <= 1.35 -> V2, >= 1.36 -> V3. */
ContainerdFormat k0s_version_containerd_format(const K0sVersion *v);
