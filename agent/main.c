/* SPDX-License-Identifier: MIT */
/*
 * k0s-tsagent's command line: argv -> subcommand. `run` hands over to the Manager; the other
 * subcommands (check-config, render, status) run once and exit. Exit codes: 0 ok, 1 runtime
 * error (check-config: invalid file), 2 usage error.
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "doctor.h"
#include "log.h"
#include "manager.h"
#include "render-cli.h"
#include "status.h"

static void help(void) {
        printf("Usage: k0s-tsagent [--config PATH] [COMMAND] [OPTIONS]\n"
               "\n"
               "Runs k0s on a Tailscale network: waits for the tailnet, renders containerd's\n"
               "registry files and k0s.yaml, starts and supervises k0s pinned to the tailnet IP.\n"
               "\n"
               "Commands:\n"
               "  run                  run the daemon (default)\n"
               "  check-config         validate the config file; exit 1 if invalid\n"
               "  render --root DIR [--address IPV4] [--dns-name NAME] [--k0s-version VER]\n"
               "                       write every file the daemon would write, below DIR\n"
               "  status [--json]      show the running agent's state\n"
               "  doctor [--json] [--check ID,...] [--root DIR]\n"
               "                       check this node for known k0s-over-Tailscale traps\n"
               "\n"
               "Options:\n"
               "  -c, --config PATH    config file (default %s)\n"
               "  -h, --help           show this help\n"
               "      --version        show the version\n",
               CONFIG_PATH_DEFAULT);
}

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

static int cmd_check_config(const char *config_path) {
        _cleanup_(config_freep) AgentConfig *c = NULL;
        if (cli_load_config(config_path, &c) < 0)
                return 1;
        printf("%s: OK (role %s, interface %s, %zu registr%s)\n", config_path,
               k0s_role_to_string(c->role), c->interface, c->n_registries,
               c->n_registries == 1 ? "y" : "ies");
        return 0;
}

static int cmd_status(const char *config_path, int argc, char **argv) {
        bool json = false;
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--json"))
                        json = true;
                else
                        return cli_usage_error("status: unknown option", argv[i]);
        }
        _cleanup_(config_freep) AgentConfig *c = NULL;
        if (cli_load_config(config_path, &c) < 0)
                return 1;
        int r = status_show(c->state_dir, json, stdout);
        if (r == -ENOENT) {
                fprintf(stderr, "k0s-tsagent: no %s/%s: is the agent running?\n", c->state_dir,
                        STATUS_FILE_NAME);
                return 1;
        }
        if (r < 0) {
                fprintf(stderr, "k0s-tsagent: cannot read %s/%s: %s\n", c->state_dir,
                        STATUS_FILE_NAME, strerror(-r));
                return 1;
        }
        return 0;
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
                        help();
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
        if (streq(cmd, "check-config")) {
                if (sub_argc > 1)
                        return cli_usage_error("check-config: unexpected argument", sub_argv[1]);
                return cmd_check_config(config_path);
        }
        if (streq(cmd, "render"))
                return render_cli(config_path, sub_argc, sub_argv);
        if (streq(cmd, "status"))
                return cmd_status(config_path, sub_argc, sub_argv);
        if (streq(cmd, "doctor"))
                return doctor_cli(config_path, sub_argc, sub_argv);
        if (streq(cmd, "help")) {
                help();
                return 0;
        }
        return cli_usage_error("unknown command", cmd);
}
