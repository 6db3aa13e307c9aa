/* SPDX-License-Identifier: MIT */
/*
 * `k0s-tsagent render`: the daemon's reconcile() run once for facts given on the command line,
 * writing every planned file below --root through atomic-file. Runs nothing else.
 */

#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "util.h"
#include "atomic-file.h"
#include "k0s-version.h"
#include "manager.h"
#include "netwatch.h"
#include "reconcile.h"
#include "render-cli.h"
#include "render-k0s.h"
#include "tailnet-status.h"

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

int render_cli(const char *config_path, int argc, char **argv) {
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
                return cli_usage_error("render: unexpected argument", argv[optind]);
        if (!root)
                return cli_usage_error("render: missing", "--root DIR");
        struct in_addr a4;
        if (address && (inet_pton(AF_INET, address, &a4) != 1 || !address_is_tailnet_ipv4(address)))
                return cli_usage_error("render: not a tailnet IPv4 (100.64.0.0/10):", address);

        _cleanup_(config_freep) AgentConfig *cfg = NULL;
        if (cli_load_config(config_path, &cfg) < 0)
                return 1;

        K0sVersion v;
        _cleanup_free_ char *probed = NULL;
        if (!version && !streq(cfg->k0s_version, "auto"))
                version = cfg->k0s_version;
        if (!version) {
                int r = run_k0s_version(cfg->k0s_binary, &probed);
                if (r < 0) {
                        fprintf(stderr,
                                "k0s-tsagent: cannot run '%s version' (%s); pass "
                                "--k0s-version\n",
                                cfg->k0s_binary, strerror(-r));
                        return 1;
                }
                version = probed;
        }
        if (k0s_version_parse(version, &v) < 0)
                return cli_usage_error("render: not a k0s version:", version);

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
                .net = &net,
                .tailnet = &ts,
                .k0s_version = &v,
                .base_config = { .content = base, .len = base_len, .error = base ? 0 : -ENOENT },
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
                        if (startswith(p->files[i].path, *d) &&
                            p->files[i].path[strlen(*d)] == '/') {
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
