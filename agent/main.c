/* SPDX-License-Identifier: MIT */
/*
 * k0s-tsagent's command line: argv -> subcommand. `run` hands over to the Manager; the other
 * subcommands (check-config, render, status) run once and exit. Exit codes: 0 ok, 1 runtime
 * error (check-config: invalid file), 2 usage error.
 */

#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "atomic-file.h"
#include "config.h"
#include "k0s-version.h"
#include "log.h"
#include "manager.h"
#include "netwatch.h"
#include "reconcile.h"
#include "status.h"
#include "tailnet-status.h"

extern char **environ;

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
               "\n"
               "Options:\n"
               "  -c, --config PATH    config file (default %s)\n"
               "  -h, --help           show this help\n"
               "      --version        show the version\n",
               CONFIG_PATH_DEFAULT);
}

static int usage_error(const char *fmt, const char *arg) {
        fprintf(stderr, "k0s-tsagent: ");
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\nTry 'k0s-tsagent --help'.\n");
        return 2;
}

static int load_config(const char *path, AgentConfig **ret) {
        _cleanup_free_ char *error = NULL;
        int r = config_load(path, ret, &error);
        if (r < 0)
                fprintf(stderr, "%s\n", error ?: strerror(-r));
        return r;
}

static int cmd_run(const char *config_path) {
        _cleanup_(manager_freep) Manager *m = NULL;
        AgentConfig *c = NULL;
        sigset_t mask;

        log_open();
        if (load_config(config_path, &c) < 0)
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
        if (load_config(config_path, &c) < 0)
                return 1;
        printf("%s: OK (role %s, interface %s, %zu registr%s)\n", config_path,
               k0s_role_to_string(c->role), c->interface, c->n_registries,
               c->n_registries == 1 ? "y" : "ies");
        return 0;
}

/* `k0s version`, synchronously: fine for a one-shot CLI, never used by the daemon. */
static int run_k0s_version(const char *binary, char **ret) {
        int pipefd[2];
        posix_spawn_file_actions_t fa;
        pid_t pid;
        char buf[4096];
        size_t n = 0;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        char *argv[] = { (char *) binary, (char *) "version", NULL };
        int r = posix_spawn(&pid, binary, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(pipefd[1]);
        if (r != 0) {
                close(pipefd[0]);
                return -r;
        }
        for (;;) {
                ssize_t k = read(pipefd[0], buf + n, sizeof(buf) - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t) k;
                if (n >= sizeof(buf) - 1)
                        break;
        }
        close(pipefd[0]);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -EIO;
        buf[n] = 0;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

static int cmd_render(const char *config_path, int argc, char **argv) {
        static const struct option options[] = {
                { "root", required_argument, NULL, 'r' },
                { "address", required_argument, NULL, 'a' },
                { "dns-name", required_argument, NULL, 'd' },
                { "k0s-version", required_argument, NULL, 'k' },
                {},
        };
        const char *root = NULL, *address = NULL, *dns_name = NULL, *version = NULL;
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'r':
                        root = optarg;
                        break;
                case 'a':
                        address = optarg;
                        break;
                case 'd':
                        dns_name = optarg;
                        break;
                case 'k':
                        version = optarg;
                        break;
                default:
                        return 2;
                }
        if (optind < argc)
                return usage_error("render: unexpected argument '%s'", argv[optind]);
        if (!root)
                return usage_error("render: %s is required", "--root DIR");
        struct in_addr a4;
        if (address && (inet_pton(AF_INET, address, &a4) != 1 || !address_is_tailnet_ipv4(address)))
                return usage_error("render: --address '%s' is not a tailnet IPv4 (100.64.0.0/10)",
                                   address);

        _cleanup_(config_freep) AgentConfig *cfg = NULL;
        if (load_config(config_path, &cfg) < 0)
                return 1;

        K0sVersion v;
        _cleanup_free_ char *probed = NULL;
        if (!version && !streq(cfg->k0s_version, "auto"))
                version = cfg->k0s_version;
        if (!version) {
                int r = run_k0s_version(cfg->k0s_binary, &probed);
                if (r < 0) {
                        fprintf(stderr, "k0s-tsagent: cannot run '%s version' (%s); pass "
                                        "--k0s-version\n", cfg->k0s_binary, strerror(-r));
                        return 1;
                }
                version = probed;
        }
        if (k0s_version_parse(version, &v) < 0)
                return usage_error("render: '%s' is not a k0s version", version);

        /* The facts as if the tailnet were up with this address. */
        NetState net = { .present = true, .up = true, .ifindex = 1, .admin_up = true };
        TailnetStatus ts = { .backend_state = BACKEND_RUNNING, .self_online = true, .tun = true };
        char *empty[] = { NULL };
        ts.health = empty;
        if (address) {
                snprintf(net.ipv4[0], sizeof(net.ipv4[0]), "%s", address);
                net.n_ipv4 = 1;
                ts.ipv4 = (char *) address;
        }
        _cleanup_free_ char *dns = dns_name ? strdup(dns_name) : NULL;
        if (dns && dns[0] && dns[strlen(dns) - 1] == '.')
                dns[strlen(dns) - 1] = 0;
        ts.dns_name = dns;

        _cleanup_free_ char *base = NULL;
        size_t base_len = 0;
        if (k0s_role_is_controller(cfg->role)) {
                int r = read_file_full(cfg->k0s_base_config, RENDER_K0S_MAX_BASE_SIZE, &base,
                                       &base_len);
                if (r < 0 && r != -ENOENT) {
                        fprintf(stderr, "%s: %s\n", cfg->k0s_base_config, strerror(-r));
                        return 1;
                }
        }
        NodeFacts f = {
                .net = &net, .tailnet = &ts, .k0s_version = &v,
                .base_k0s_yaml = base, .base_k0s_yaml_len = base_len,
        };
        _cleanup_(plan_freep) Plan *p = NULL;
        int r = reconcile(cfg, &f, &p);
        if (r < 0) {
                fprintf(stderr, "k0s-tsagent: render failed: %s\n", strerror(-r));
                return 1;
        }
        if (p->error) {
                fprintf(stderr, "%s\n", p->error);
                return 1;
        }
        for (char **w = p->warnings; w && *w; w++)
                fprintf(stderr, "warning: %s\n", *w);

        int ret = 0;
        for (size_t i = 0; i < p->n_files; i++) {
                _cleanup_free_ char *path = path_join_root(root, p->files[i].path);
                if (!path)
                        return 1;
                for (char **d = p->registry_dirs; d && *d; d++)
                        if (startswith(p->files[i].path, *d) && p->files[i].path[strlen(*d)] == '/') {
                                _cleanup_free_ char *dir = path_join_root(root, *d);
                                if (dir && (r = manager_ensure_registry_dir(dir)) < 0)
                                        fprintf(stderr, "%s: %s\n", dir, strerror(-r));
                        }
                r = atomic_file_write(path, p->files[i].contents, strlen(p->files[i].contents),
                                      p->files[i].mode);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", path, strerror(-r));
                        ret = 1;
                } else
                        printf("%s %s\n", r > 0 ? "wrote    " : "unchanged", path);
        }
        if (p->gate_open) {
                _cleanup_free_ char *cmd = strv_join(p->spec.argv, " ");
                printf("k0s would run: %s\n", cmd ?: "?");
        } else
                printf("k0s would not run yet: waiting for %s\n", p->waiting_for);
        return ret;
}

static int cmd_status(const char *config_path, int argc, char **argv) {
        bool json = false;
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--json"))
                        json = true;
                else
                        return usage_error("status: unknown option '%s'", argv[i]);
        }
        _cleanup_(config_freep) AgentConfig *c = NULL;
        if (load_config(config_path, &c) < 0)
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
                        return usage_error("run: unexpected argument '%s'", sub_argv[1]);
                return cmd_run(config_path);
        }
        if (streq(cmd, "check-config")) {
                if (sub_argc > 1)
                        return usage_error("check-config: unexpected argument '%s'", sub_argv[1]);
                return cmd_check_config(config_path);
        }
        if (streq(cmd, "render"))
                return cmd_render(config_path, sub_argc, sub_argv);
        if (streq(cmd, "status"))
                return cmd_status(config_path, sub_argc, sub_argv);
        if (streq(cmd, "help")) {
                help();
                return 0;
        }
        return usage_error("unknown command '%s'", cmd);
}
