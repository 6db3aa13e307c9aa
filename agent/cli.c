/* SPDX-License-Identifier: MIT */
/*
 * The one-shot commands: each is a parse_argv() into a plain struct and a run(). `run` (the
 * daemon) is main.c's; `render` lives in render-cli.c. Exit codes: 0 ok, 1 runtime error
 * (check-config: invalid file), 2 usage error.
 */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "atomic-file.h"
#include "cli.h"
#include "doctor.h"
#include "import-unit.h"
#include "facts.h"
#include "persist.h"
#include "render-cli.h"
#include "status.h"

int cli_usage_error(const char *what, const char *arg) {
        fprintf(stderr, "k0s-tsagent: %s '%s'\nTry 'k0s-tsagent --help'.\n", what, arg);
        return 2;
}

int cli_load_config(const char *path, AgentConfig **ret) {
        _cleanup_free_ char *error = NULL;
        int r = config_load(path, ret, &error);
        if (r < 0)
                fprintf(stderr, "%s\n", error ?: strerror(-r));
        return r;
}

void cli_help(void) {
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
               "  import-unit [--root DIR] [UNIT_FILE]\n"
               "                       print a config that runs k0s as k0s's own unit does\n"
               "  doctor [--json] [--check ID,...] [--root DIR]\n"
               "                       check this node for known k0s-over-Tailscale traps\n"
               "  accept-address [ADDR]\n"
               "                       accept a controller's new tailnet IPv4 (default: the\n"
               "                       current one) after its etcd member was moved\n"
               "\n"
               "Options:\n"
               "  -c, --config PATH    config file (default %s)\n"
               "  -h, --help           show this help\n"
               "      --version        show the version\n",
               CONFIG_PATH_DEFAULT);
}

/* ---- check-config ----------------------------------------------------------------------- */

static int check_config_run(const char *config_path) {
        _cleanup_(config_freep) AgentConfig *c = NULL;
        if (cli_load_config(config_path, &c) < 0)
                return 1;
        _cleanup_strv_free_ char **warnings = NULL;
        if (config_lint(c, &warnings) < 0)
                return fprintf(stderr, "k0s-tsagent: out of memory\n"), 1;
        for (char **w = warnings; w && *w; w++)
                fprintf(stderr, "warning: %s\n", *w);
        printf("%s: OK (role %s, interface %s, %zu registr%s)\n", config_path,
               k0s_role_to_string(c->role), c->interface, c->n_registries,
               c->n_registries == 1 ? "y" : "ies");
        return 0;
}

/* ---- status ----------------------------------------------------------------------------- */

typedef struct StatusArgs {
        bool json;
} StatusArgs;

static int status_parse_argv(int argc, char **argv, StatusArgs *ret) {
        *ret = (StatusArgs){};
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--json"))
                        ret->json = true;
                else
                        return cli_usage_error("status: unknown option", argv[i]);
        }
        return 0;
}

static int status_run(const char *config_path, const StatusArgs *a) {
        _cleanup_(config_freep) AgentConfig *c = NULL;
        if (cli_load_config(config_path, &c) < 0)
                return 1;
        int r = status_show(c->state_dir, a->json, stdout);
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

/* ---- accept-address -------------------------------------------------------------------- */

typedef struct AcceptArgs {
        const char *address; /* NULL: the node's current tailnet IPv4 from status.json */
} AcceptArgs;

static int accept_parse_argv(int argc, char **argv, AcceptArgs *ret) {
        *ret = (AcceptArgs){};
        if (argc > 2)
                return cli_usage_error("accept-address: unexpected argument", argv[2]);
        if (argc == 2 && !address_is_tailnet_ipv4(argv[1]))
                return cli_usage_error("accept-address: not a tailnet IPv4 (100.64.0.0/10):",
                                       argv[1]);
        ret->address = argc == 2 ? argv[1] : NULL;
        return 0;
}

/* pid is a running k0s-tsagent (status.json may be stale: never signal a foreign process). */
static bool pid_is_agent(pid_t pid) {
        _cleanup_free_ char *path = strdup_printf("/proc/%d/comm", (int) pid);
        _cleanup_free_ char *comm = NULL;
        if (pid <= 0 || !path || read_file_full(path, 64, &comm, NULL) < 0)
                return false;
        comm[strcspn(comm, "\n")] = 0;
        return streq(comm, "k0s-tsagent");
}

static int accept_run(const char *config_path, const AcceptArgs *a) {
        _cleanup_(config_freep) AgentConfig *c = NULL;
        _cleanup_free_ char *current = NULL;
        pid_t pid = 0;

        if (cli_load_config(config_path, &c) < 0)
                return 1;
        int r = status_read_agent(c->state_dir, &pid, &current);
        if (r < 0 && !a->address) {
                fprintf(stderr, "k0s-tsagent: cannot read %s/%s (%s): name the address\n",
                        c->state_dir, STATUS_FILE_NAME, strerror(-r));
                return 1;
        }
        const char *address = a->address ?: current;
        if (!address || !address_is_tailnet_ipv4(address)) {
                fprintf(stderr,
                        "k0s-tsagent: the node has no tailnet IPv4 yet: name the "
                        "address\n");
                return 1;
        }
        r = persist_write_last_address(c->persist_dir, address);
        if (r < 0) {
                fprintf(stderr, "k0s-tsagent: cannot write %s/%s: %s\n", c->persist_dir,
                        PERSIST_LAST_ADDRESS, strerror(-r));
                return 1;
        }
        printf("Accepted %s as this controller's address (%s/%s).\n", address, c->persist_dir,
               PERSIST_LAST_ADDRESS);
        if (!pid_is_agent(pid)) {
                printf("No running agent found; it reads the address when it starts.\n");
                return 0;
        }
        if (kill(pid, SIGHUP) < 0) {
                fprintf(stderr,
                        "k0s-tsagent: cannot signal the agent (pid %d): %s; run "
                        "`systemctl reload k0s-tsagent`\n",
                        (int) pid, strerror(errno));
                return 1;
        }
        printf("Asked the agent (pid %d) to reconcile.\n", (int) pid);
        return 0;
}

/* ---- dispatch --------------------------------------------------------------------------- */

int cli_run(const char *config_path, int argc, char **argv) {
        const char *cmd = argv[0];

        if (streq(cmd, "check-config")) {
                if (argc > 1)
                        return cli_usage_error("check-config: unexpected argument", argv[1]);
                return check_config_run(config_path);
        }
        if (streq(cmd, "render"))
                return render_cli(config_path, argc, argv);
        if (streq(cmd, "status")) {
                StatusArgs a = {};
                int r = status_parse_argv(argc, argv, &a);
                return r != 0 ? r : status_run(config_path, &a);
        }
        if (streq(cmd, "accept-address")) {
                AcceptArgs a = {};
                int r = accept_parse_argv(argc, argv, &a);
                return r != 0 ? r : accept_run(config_path, &a);
        }
        if (streq(cmd, "import-unit"))
                return import_unit_main(argc, argv);
        if (streq(cmd, "doctor"))
                return doctor_cli(config_path, argc, argv);
        if (streq(cmd, "help")) {
                cli_help();
                return 0;
        }
        return cli_usage_error("unknown command", cmd);
}
