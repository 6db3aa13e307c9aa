/* SPDX-License-Identifier: MIT */
#pragma once

/* The one-shot CLI commands that need no event loop. */

#include "config.h"

/* `render --root DIR [--address IPV4] [--dns-name NAME] [--k0s-version VER]`; argv[0] is
 * "render". Returns the exit code. */
int render_cli(const char *config_path, int argc, char **argv);

/* Print "k0s-tsagent: WHAT 'ARG'" and a hint; returns 2 (usage error). */
int cli_usage_error(const char *what, const char *arg);
/* config_load(), printing the FILE:LINE:COLUMN error to stderr. */
int cli_load_config(const char *path, AgentConfig **ret);
