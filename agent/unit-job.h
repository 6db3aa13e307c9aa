/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * "Is the job systemd runs on our unit a restart?", asked asynchronously over D-Bus on the
 * event loop (systemd sends SIGTERM for both stop and restart; a restart leaves k0s running).
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct UnitJobQuery UnitJobQuery;

/* Called once: r < 0 when the answer could not be had (no bus, timeout, no unit), else
 * restarting says whether the job on the unit is a restart. */
typedef void (*UnitJobHandler)(UnitJobQuery *q, int r, bool restarting, void *userdata);

/* Ask about the unit of pid. address: a D-Bus address to use as a bus client (tests), or NULL
 * for systemd's private socket, falling back to the system bus. The whole query is bounded by
 * timeout_usec. The handler is not called from within this function. */
int unit_job_query(sd_event *e, const char *address, uint32_t pid, uint64_t timeout_usec,
                   UnitJobHandler handler, void *userdata, UnitJobQuery **ret);
UnitJobQuery *unit_job_query_free(UnitJobQuery *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(UnitJobQuery *, unit_job_query_free);

/* Whether a JobType property value means our stop is part of a restart. Only job types that
 * exist count: systemd collapses try-restart into restart (or nop) when it installs the job
 * (job_type_collapse() in src/core/job.c), and reload-or-restart / reload-or-try-restart are
 * method names (ReloadOrRestartUnit), never job types. */
bool unit_job_type_is_restart(const char *job_type);
