/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * k0s status-socket probe: GET /status on k0s.status_socket every interval (with a timeout,
 * because k0s can block up to minutes building its client), parsed with k0s-status. Report only:
 * it never restarts anything.
 */

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "curl-glue.h"
#include "k0s-status.h"

typedef struct Health Health;
typedef void (*HealthHandler)(Health *h, void *userdata);

int health_new(CurlGlue *glue, const char *socket_path, HealthHandler handler, void *userdata,
               Health **ret);
int health_attach(Health *h, sd_event *e);
void health_configure(Health *h, const char *socket_path, uint64_t interval_usec,
                      uint64_t timeout_usec);
/* Probe only while k0s runs: enabling probes first one interval later (k0s serves its status
 * socket late, so an immediate probe could only fail), then every interval. */
void health_set_enabled(Health *h, bool enabled);

const K0sStatus *health_get_status(const Health *h); /* NULL if the last probe failed */
const char *health_get_error(const Health *h); /* NULL if the last probe succeeded */
Health *health_free(Health *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Health *, health_free);
