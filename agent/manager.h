/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon: owns the one sd_event, every watcher, the supervisor and the config, and runs a
 * reconcile pass (deferred, so a burst of events gives one pass) whenever any input changed.
 */

#include "config.h"
#include "macro.h"

typedef struct Manager Manager;

/* Takes ownership of config. Signals TERM, INT, HUP and CHLD must already be blocked. */
int manager_new(const char *config_path, AgentConfig *config, Manager **ret);
/* Attach every source, adopt a running k0s, schedule the first reconcile. */
int manager_start(Manager *m);
/* Run the loop until shutdown; returns the exit code. */
int manager_run(Manager *m);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Create certs_dir/<registry> with the agent's marker file if it does not exist yet, so that the
 * agent later removes only directories it created. Used by the daemon and by `render`. */
int manager_ensure_registry_dir(const char *dir);
