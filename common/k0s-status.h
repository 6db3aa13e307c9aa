/* SPDX-License-Identifier: MIT */
#pragma once

/* k0s's status socket: GET /status JSON (PascalCase keys, no json tags) -> K0sStatus. */

#include <stdbool.h>
#include <stddef.h>

#define K0S_STATUS_MAX_SIZE (4u * 1024u * 1024u)
/* cJSON spends ~80 bytes per element: at most ~20 MiB of tree. */
#define K0S_STATUS_MAX_VALUES (256u * 1024u)

typedef struct K0sStatus {
        char *version;
        char *role; /* "controller" or "worker" */
        int pid; /* 0 if absent */
        bool workloads;
        bool single_node;
        bool api_ok; /* WorkerToAPIConnectionStatus.Success */
        char *api_message; /* WorkerToAPIConnectionStatus.Message; may be NULL */
} K0sStatus;

/* -EINVAL on invalid JSON / not an object / no Version and no Role; -EFBIG over the limit. */
int k0s_status_parse(const char *json, size_t len, K0sStatus **ret);
K0sStatus *k0s_status_free(K0sStatus *s);
