/* SPDX-License-Identifier: MIT */
/*
 * `k0s-tsagent render`: the daemon's reconcile() run once for facts given on the command line,
 * writing every planned file below --root through atomic-file. Runs nothing else.
 */

#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "util.h"
#include "atomic-file.h"
#include "k0s-version.h"
#include "cli.h"
#include "files.h"
#include "log.h"
#include "netwatch.h"
#include "reconcile.h"
#include "spawn-child.h"
#include "render-cli.h"
#include "render-k0s.h"
#include "tailnet-status.h"

/* `k0s version`, synchronously: fine for a one-shot CLI, never used by the daemon. The same
 * clean child as the daemon's probe (spawn-child.h): fds 0-2 only. */
static int run_k0s_version(const char *binary, char **ret) {
        int pipefd[2];
        pid_t pid;
        char buf[4096];
        size_t n = 0;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        char *argv[] = { (char *) binary, (char *) "version", NULL };
        _cleanup_strv_free_ char **env = spawn_build_env(NULL, NULL);
        if (!env) {
                close(pipefd[0]);
                close(pipefd[1]);
                return -ENOMEM;
        }
        SpawnSpec spec = { .argv = argv, .env = env, .stdout_fd = pipefd[1], .stderr_fd = -1 };
        int r = spawn_child(&spec, &pid);
        close(pipefd[1]);
        if (r < 0) {
                close(pipefd[0]);
                return r;
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

typedef struct RenderArgs {
        const char *root, *address, *dns_name, *version;
} RenderArgs;

static int render_parse_argv(int argc, char **argv, RenderArgs *ret) {
        static const struct option options[] = {
                { "root", required_argument, NULL, 'r' },
                { "address", required_argument, NULL, 'a' },
                { "dns-name", required_argument, NULL, 'd' },
                { "k0s-version", required_argument, NULL, 'k' },
                {},
        };
        RenderArgs a = {};
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'r':
                        a.root = optarg;
                        break;
                case 'a':
                        a.address = optarg;
                        break;
                case 'd':
                        a.dns_name = optarg;
                        break;
                case 'k':
                        a.version = optarg;
                        break;
                default:
                        return 2;
                }
        if (optind < argc)
                return cli_usage_error("render: unexpected argument", argv[optind]);
        if (!a.root)
                return cli_usage_error("render: missing", "--root DIR");
        struct in_addr a4;
        if (a.address &&
            (inet_pton(AF_INET, a.address, &a4) != 1 || !address_is_tailnet_ipv4(a.address)))
                return cli_usage_error("render: not a tailnet IPv4 (100.64.0.0/10):", a.address);
        *ret = a;
        return 0;
}

/* The k0s version from --k0s-version, the config, or `k0s version`. Returns an exit code. */
static int render_version(const AgentConfig *cfg, const char *version, K0sVersion *ret) {
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
        if (k0s_version_parse(version, ret) < 0)
                return cli_usage_error("render: not a k0s version:", version);
        return 0;
}

/* Write the plan's files below root through the daemon's file-apply path and list them. */
static int render_apply(const AgentConfig *cfg, const Plan *p, const char *root) {
        _cleanup_(files_freep) Files *files = NULL;
        bool k0s_yaml_ok;

        if (files_new(root, &files) < 0)
                return 1;
        /* files.c logs: only its warnings and errors belong on render's stderr. */
        log_set_max_level(LOG_WARNING);
        int failed = files_apply(files, cfg, p, &k0s_yaml_ok);
        files_cleanup(files, cfg, p);
        for (size_t i = 0; i < files_get_count(files); i++) {
                const FileRecord *r = files_get(files, i);
                if (r->result >= 0)
                        printf("%s %s\n", r->result > 0 ? "wrote    " : "unchanged", r->path);
                else
                        fprintf(stderr, "%s: %s\n", r->path, r->error ?: "failed");
        }
        return failed != 0;
}

int render_cli(const char *config_path, int argc, char **argv) {
        RenderArgs a = {};
        int r = render_parse_argv(argc, argv, &a);
        if (r != 0)
                return r;

        _cleanup_(config_freep) AgentConfig *cfg = NULL;
        if (cli_load_config(config_path, &cfg) < 0)
                return 1;
        K0sVersion v;
        if ((r = render_version(cfg, a.version, &v)) != 0)
                return r;

        /* The facts as if the tailnet were up with this address. */
        NetState net = { .present = true, .up = true, .ifindex = 1, .admin_up = true };
        TailnetStatus ts = { .backend_state = BACKEND_RUNNING, .self_online = true, .tun = true };
        char *empty[] = { NULL };
        ts.health = empty;
        if (a.address) {
                snprintf(net.ipv4[0], sizeof(net.ipv4[0]), "%s", a.address);
                net.n_ipv4 = 1;
                ts.ipv4 = (char *) a.address;
        }
        _cleanup_free_ char *dns = a.dns_name ? strdup(a.dns_name) : NULL;
        if (dns && dns[0] && dns[strlen(dns) - 1] == '.')
                dns[strlen(dns) - 1] = 0;
        ts.dns_name = dns;

        _cleanup_free_ char *base = NULL;
        size_t base_len = 0;
        int base_r = -ENOENT;
        if (k0s_role_is_controller(cfg->role)) {
                base_r = read_file_full(cfg->k0s_base_config, RENDER_K0S_MAX_BASE_SIZE, &base,
                                        &base_len);
                if (base_r < 0 && base_r != -ENOENT) {
                        fprintf(stderr, "%s: %s\n", cfg->k0s_base_config, strerror(-base_r));
                        return 1;
                }
        }
        NodeFacts f = {
                .net = &net,
                .tailnet = &ts,
                .k0s_version = &v,
                .base_config = { .content = base, .len = base_len, .error = base ? 0 : base_r },
        };
        _cleanup_(plan_freep) Plan *p = NULL;
        r = reconcile(cfg, &f, &p);
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

        int ret = render_apply(cfg, p, a.root);
        if (p->gate_open) {
                _cleanup_free_ char *cmd = strv_join(p->spec.argv, " ");
                printf("k0s would run: %s\n", cmd ?: "?");
        } else
                printf("k0s would not run yet: waiting for %s\n", p->waiting_for);
        return ret;
}
