/* SPDX-License-Identifier: MIT */
#pragma once

/* The one-shot commands (everything but `run`): their argv and their run. */

#include "config.h"

/* Print "k0s-tsagent: WHAT 'ARG'" and a hint; returns 2 (usage error). */
int cli_usage_error(const char *what, const char *arg);
/* config_load(), printing the FILE:LINE:COLUMN error to stderr. */
int cli_load_config(const char *path, AgentConfig **ret);
void cli_help(void);

/* Run the one-shot command argv[0] (check-config, render, status, accept-address, help).
 * Returns the exit code; 2 with a message for an unknown command. */
int cli_run(const char *config_path, int argc, char **argv);
