/* SPDX-License-Identifier: MIT */
/*
 * k0s-tsagent's entry point: the global options, then `run` (the daemon: config, signals,
 * Manager, loop) or one of cli.c's one-shot commands. Exit codes: 0 ok, 1 runtime error,
 * 2 usage error.
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "cli.h"
#include "config.h"
#include "log.h"
#include "manager.h"

static int cmd_run(const char *config_path) {
        _cleanup_(manager_freep) Manager *m = NULL;
        AgentConfig *c = NULL;
        sigset_t mask;

        log_open();
        if (cli_load_config(config_path, &c) < 0)
                return 1;

        /* sd-event handles these; SIGCHLD must be blocked for child sources. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m"), 1;
        /* k0s's stdout is the journal; a vanished reader must not kill the agent. */
        signal(SIGPIPE, SIG_IGN);

        int r = manager_new(config_path, c, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to create the manager: %m"), 1;
        r = manager_start(m);
        if (r < 0)
                return 1;
        return manager_run(m);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        const char *config_path = CONFIG_PATH_DEFAULT;
        int c;

        /* '+': stop at the command, whose own options follow it. */
        while ((c = getopt_long(argc, argv, "+c:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'h':
                        cli_help();
                        return 0;
                case 'V':
                        printf("k0s-tsagent %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        return 2;
                }

        const char *cmd = optind < argc ? argv[optind] : "run";
        int sub_argc = optind < argc ? argc - optind : 0;
        char **sub_argv = argv + optind;

        /* --config may also follow the command: `k0s-tsagent check-config --config X`. */
        for (int i = 1; i + 1 < sub_argc; i++)
                if (streq(sub_argv[i], "--config") || streq(sub_argv[i], "-c")) {
                        config_path = sub_argv[i + 1];
                        memmove(sub_argv + i, sub_argv + i + 2,
                                sizeof(char *) * (size_t) (sub_argc - i - 1));
                        sub_argc -= 2;
                        break;
                }

        if (streq(cmd, "run")) {
                if (sub_argc > 1)
                        return cli_usage_error("run: unexpected argument", sub_argv[1]);
                return cmd_run(config_path);
        }
        return cli_run(config_path, sub_argc, sub_argv);
}
