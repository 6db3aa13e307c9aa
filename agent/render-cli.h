/* SPDX-License-Identifier: MIT */
#pragma once

/* `k0s-tsagent render`: the daemon's reconcile and file apply, once, below a root. */

#include "cli.h" /* cli_usage_error(), cli_load_config() for the other commands */
#include "config.h"

/* `render --root DIR [--address IPV4] [--dns-name NAME] [--k0s-version VER]`; argv[0] is
 * "render". Returns the exit code. */
int render_cli(const char *config_path, int argc, char **argv);
