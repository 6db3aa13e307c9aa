/* SPDX-License-Identifier: MIT */
/*
 * The pure decision of the agent: (config, facts) -> Plan. It decides whether the gate is open,
 * which address k0s is pinned to, the text of every file, and k0s's argv/env with a hash of all
 * inputs k0s reads only at start. It never touches a file descriptor; manager.c applies plans.
 */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "atomic-file.h"
#include "reconcile.h"
#include "render-containerd.h"
#include "render-k0s.h"

Plan *plan_free(Plan *p) {
        if (!p)
                return NULL;
        free(p->address);
        free(p->dns_name);
        free(p->waiting_for);
        for (size_t i = 0; i < p->n_files; i++) {
                free(p->files[i].path);
                free(p->files[i].contents);
        }
        free(p->files);
        strv_free(p->registry_dirs);
        k0s_spec_done(&p->spec);
        strv_free(p->warnings);
        free(p->error);
        free(p->status);
        free(p);
        return NULL;
}

static int plan_add_file(Plan *p, const char *path, char *contents, mode_t mode) {
        PlanFile *f = realloc(p->files, sizeof(PlanFile) * (p->n_files + 1));
        if (!f)
                return -ENOMEM;
        p->files = f;
        char *c = strdup(path);
        if (!c)
                return -ENOMEM;
        p->files[p->n_files++] = (PlanFile){ .path = c, .contents = contents, .mode = mode };
        return 0;
}

char *reconcile_spec_hash(char *const *argv, char *const *env, const char *k0s_yaml) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        const char *parts[3][2] = { { "argv", NULL }, { "env", NULL }, { "yaml", k0s_yaml } };

#define FNV(c) \
        do { \
                h ^= (uint8_t) (c); \
                h *= UINT64_C(0x100000001b3); \
        } while (0)

        for (size_t k = 0; k < 3; k++) {
                for (const char *s = parts[k][0]; *s; s++)
                        FNV(*s);
                FNV(0);
                char *const *l = k == 0 ? argv : k == 1 ? env : NULL;
                for (char *const *i = l; i && *i; i++) {
                        for (const char *s = *i; *s; s++)
                                FNV(*s);
                        FNV(0);
                }
                for (const char *s = parts[k][1]; s && *s; s++)
                        FNV(*s);
                FNV(0xff);
        }
#undef FNV
        return strdup_printf("%016llx", (unsigned long long) h);
}

/* Split a --kubelet-extra-args value on whitespace (k0s does exactly that; no quoting). */
static int split_ws(const char *v, char ***l) {
        const char *p = v;
        while (*p) {
                while (*p == ' ' || *p == '\t' || *p == '\n')
                        p++;
                if (!*p)
                        break;
                size_t n = strcspn(p, " \t\n");
                char *w = strndup(p, n);
                if (!w)
                        return -ENOMEM;
                int r = strv_push(l, w);
                if (r < 0) {
                        free(w);
                        return r;
                }
                p += n;
        }
        return 0;
}

int reconcile_k0s_argv(const AgentConfig *cfg, const char *address, char ***ret) {
        _cleanup_strv_free_ char **argv = NULL, **kubelet = NULL, **rest = NULL;
        int r;

        /* Take user kubelet args out of k0s.args, so ours and theirs become one flag: k0s keeps
         * only the last --kubelet-extra-args it is given. */
        for (size_t i = 0; cfg->k0s_args && cfg->k0s_args[i]; i++) {
                const char *a = cfg->k0s_args[i];
                if (startswith(a, "--kubelet-extra-args=")) {
                        r = split_ws(a + strlen("--kubelet-extra-args="), &kubelet);
                } else if (streq(a, "--kubelet-extra-args") && cfg->k0s_args[i + 1]) {
                        r = split_ws(cfg->k0s_args[++i], &kubelet);
                } else
                        r = strv_extend(&rest, a);
                if (r < 0)
                        return r;
        }

        if ((r = strv_extend(&argv, cfg->k0s_binary)) < 0)
                return r;

        switch (cfg->role) {
        case K0S_ROLE_WORKER: {
                _cleanup_free_ char *t = strdup_printf("--token-file=%s", cfg->k0s_token_file);
                if (!t)
                        return -ENOMEM;
                if ((r = strv_extend(&argv, "worker")) < 0 || (r = strv_extend(&argv, t)) < 0)
                        return r;
                break;
        }
        case K0S_ROLE_CONTROLLER:
        case K0S_ROLE_CONTROLLER_WORKER:
        case K0S_ROLE_SINGLE: {
                _cleanup_free_ char *c = strdup_printf("--config=%s", cfg->k0s_config);
                if (!c)
                        return -ENOMEM;
                if ((r = strv_extend(&argv, "controller")) < 0 || (r = strv_extend(&argv, c)) < 0)
                        return r;
                if (cfg->role == K0S_ROLE_CONTROLLER_WORKER &&
                    (r = strv_extend(&argv, "--enable-worker")) < 0)
                        return r;
                if (cfg->role == K0S_ROLE_SINGLE && (r = strv_extend(&argv, "--single")) < 0)
                        return r;
                break;
        }
        case _K0S_ROLE_MAX:
        case _K0S_ROLE_INVALID:
                return -EINVAL;
        }

        if (k0s_role_runs_kubelet(cfg->role)) {
                _cleanup_strv_free_ char **merged = NULL;
                _cleanup_free_ char *pin = strdup_printf("--node-ip=%s", address);
                if (!pin || strv_extend(&merged, pin) < 0)
                        return -ENOMEM;
                for (char **i = kubelet; i && *i; i++)
                        /* Ours wins: a user --node-ip would pin kubelet off the tailnet. */
                        if (!startswith(*i, "--node-ip=") && !streq(*i, "--node-ip") &&
                            strv_extend(&merged, *i) < 0)
                                return -ENOMEM;
                _cleanup_free_ char *joined = strv_join(merged, " ");
                _cleanup_free_ char *flag =
                        joined ? strdup_printf("--kubelet-extra-args=%s", joined) : NULL;
                if (!flag || strv_extend(&argv, flag) < 0)
                        return -ENOMEM;
        } else if (kubelet) {
                /* A pure controller runs no kubelet; pass the user's flag through unchanged. */
                _cleanup_free_ char *joined = strv_join(kubelet, " ");
                _cleanup_free_ char *flag =
                        joined ? strdup_printf("--kubelet-extra-args=%s", joined) : NULL;
                if (!flag || strv_extend(&argv, flag) < 0)
                        return -ENOMEM;
        }

        for (char **i = rest; i && *i; i++)
                if ((r = strv_extend(&argv, *i)) < 0)
                        return r;

        *ret = TAKE_PTR(argv);
        return 0;
}

/* The host part of an http(s) URL, without brackets for IPv6 and without port. */
static char *url_host(const char *url) {
        const char *p = strstr(url, "://");
        if (!p)
                return NULL;
        p += 3;
        size_t n;
        if (*p == '[') {
                p++;
                n = strcspn(p, "]");
        } else
                n = strcspn(p, ":/?#");
        return strndup(p, n);
}

static bool peer_matches(const TailnetPeer *peer, const char *host) {
        if (streq_ptr(peer->ipv4, host) || streq_ptr(peer->ipv6, host) ||
            streq_ptr(peer->dns_name, host))
                return true;
        /* A short MagicDNS name ("registry") names the peer whose FQDN starts with it. */
        if (peer->dns_name && !strchr(host, '.') && startswith(peer->dns_name, host) &&
            peer->dns_name[strlen(host)] == '.')
                return true;
        return false;
}

int reconcile_endpoint_order(const Registry *r, const TailnetStatus *tailnet, size_t **ret) {
        size_t *order = calloc(r->n_endpoints ? r->n_endpoints : 1, sizeof(size_t));
        size_t k = 0;
        if (!order)
                return -ENOMEM;
        bool *offline = calloc(r->n_endpoints ? r->n_endpoints : 1, sizeof(bool));
        if (!offline) {
                free(order);
                return -ENOMEM;
        }
        for (size_t i = 0; i < r->n_endpoints && tailnet; i++) {
                _cleanup_free_ char *host = url_host(r->endpoints[i].url);
                if (!host)
                        continue;
                for (size_t j = 0; j < tailnet->n_peers; j++)
                        if (peer_matches(&tailnet->peers[j], host)) {
                                offline[i] = !tailnet->peers[j].online;
                                break;
                        }
        }
        for (size_t i = 0; i < r->n_endpoints; i++)
                if (!offline[i])
                        order[k++] = i;
        for (size_t i = 0; i < r->n_endpoints; i++)
                if (offline[i])
                        order[k++] = i;
        free(offline);
        *ret = order;
        return 0;
}

/* Decide the gate. Returns the address to pin to (malloc'd) or NULL with *waiting set. */
static int gate(const AgentConfig *cfg, const NodeFacts *f, char **ret_address,
                char **ret_waiting) {
        const NetState *n = f->net;
        const char *addr = NULL;
        char *w = NULL;

        if (!n || !n->present)
                w = strdup_printf("%s to appear", cfg->interface);
        else if (!n->up)
                w = strdup_printf("%s to come up", cfg->interface);
        else {
                for (size_t i = 0; i < n->n_ipv4; i++)
                        if (address_is_tailnet_ipv4(n->ipv4[i])) {
                                addr = n->ipv4[i];
                                break;
                        }
                if (!addr)
                        w = strdup_printf("%s to get a tailnet IPv4 address", cfg->interface);
                else if (cfg->require_running) {
                        const TailnetStatus *t = f->tailnet;
                        if (!t)
                                w = strdup_printf("tailscaled LocalAPI: %s",
                                                  f->tailnet_error ?: "no answer yet");
                        else if (t->backend_state != BACKEND_RUNNING)
                                w = strdup_printf("tailscaled: BackendState %s",
                                                  backend_state_to_string(t->backend_state) ?: "?");
                        else if (!t->self_online)
                                w = strdup("tailscaled: not connected to the coordination server "
                                           "(Self.Online is false)");
                        else if (!t->ipv4)
                                w = strdup("tailscaled to report a tailnet IPv4 address");
                        else {
                                /* The address tailscaled owns must be the one on the link. */
                                addr = NULL;
                                for (size_t i = 0; i < n->n_ipv4; i++)
                                        if (streq(n->ipv4[i], t->ipv4))
                                                addr = n->ipv4[i];
                                if (!addr)
                                        w = strdup_printf("%s to get %s", cfg->interface, t->ipv4);
                        }
                }
        }
        if (w) {
                *ret_waiting = w;
                *ret_address = NULL;
                return 0;
        }
        if (!addr)
                return -ENOMEM;
        char *a = strdup(addr);
        if (!a)
                return -ENOMEM;
        *ret_address = a;
        *ret_waiting = NULL;
        return 0;
}

static int render_registries(const AgentConfig *cfg, const NodeFacts *f, Plan *p) {
        int r;

        for (size_t i = 0; i < cfg->n_registries; i++) {
                const Registry *reg = &cfg->registries[i];
                _cleanup_free_ size_t *order = NULL;
                _cleanup_free_ char *dir =
                        strdup_printf("%s/%s", cfg->containerd_certs_dir, reg->name);
                _cleanup_free_ char *path = dir ? strdup_printf("%s/hosts.toml", dir) : NULL;
                char *text = NULL;
                if (!path)
                        return -ENOMEM;
                r = reconcile_endpoint_order(reg, f->tailnet, &order);
                if (r < 0)
                        return r;
                r = render_hosts_toml(reg, order, &text);
                if (r < 0)
                        return r;
                r = plan_add_file(p, path, text, 0644);
                if (r < 0) {
                        free(text);
                        return r;
                }
                if ((r = strv_extend(&p->registry_dirs, dir)) < 0)
                        return r;
        }

        if (cfg->n_registries > 0) {
                char *text = NULL;
                r = render_containerd_dropin(k0s_version_containerd_format(f->k0s_version),
                                             cfg->containerd_certs_dir, &text);
                if (r < 0)
                        return r;
                r = plan_add_file(p, cfg->containerd_dropin, text, 0644);
                if (r < 0) {
                        free(text);
                        return r;
                }
        }
        return 0;
}

int reconcile(const AgentConfig *cfg, const NodeFacts *f, Plan **ret) {
        _cleanup_(plan_freep) Plan *p = calloc(1, sizeof(Plan));
        _cleanup_free_ char *k0s_yaml = NULL;
        int r;

        if (!p)
                return -ENOMEM;
        p->warnings = calloc(1, sizeof(char *));
        if (!p->warnings)
                return -ENOMEM;
        p->k0s = PLAN_K0S_WAIT;

        r = gate(cfg, f, &p->address, &p->waiting_for);
        if (r < 0)
                return r;
        if (f->tailnet && f->tailnet->dns_name &&
            (p->dns_name = strdup(f->tailnet->dns_name)) == NULL)
                return -ENOMEM;

        /* containerd's files depend on the k0s version (drop-in format) but not on the gate:
         * they are written as soon as the version is known, so they are in place before k0s. */
        if (f->k0s_version) {
                r = render_registries(cfg, f, p);
                if (r < 0)
                        return r;
        } else if (!p->waiting_for) {
                p->waiting_for = strdup("the k0s version (`k0s version`)");
                if (!p->waiting_for)
                        return -ENOMEM;
        }

        if (!p->waiting_for && k0s_role_is_controller(cfg->role)) {
                _cleanup_free_ char *warning = NULL, *error = NULL;
                K0sFacts facts = { .ipv4 = p->address, .dns_name = p->dns_name };
                r = render_k0s_config(f->base_config.content, f->base_config.len,
                                      cfg->k0s_base_config, cfg, &facts, &k0s_yaml, &warning,
                                      &error);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        p->error = error ? TAKE_PTR(error)
                                         : strdup_printf("%s: cannot render: %s",
                                                         cfg->k0s_base_config, strerror(-r));
                        p->waiting_for = strdup_printf("a valid %s", cfg->k0s_base_config);
                        if (!p->error || !p->waiting_for)
                                return -ENOMEM;
                } else {
                        if (warning && strv_push(&p->warnings, TAKE_PTR(warning)) < 0)
                                return -ENOMEM;
                        char *copy = strdup(k0s_yaml);
                        if (!copy)
                                return -ENOMEM;
                        /* Last, so a restart never sees a new k0s.yaml with old registry files. */
                        r = plan_add_file(p, cfg->k0s_config, copy, 0600);
                        if (r < 0) {
                                free(copy);
                                return r;
                        }
                }
        }

        if (!p->waiting_for) {
                p->gate_open = true;
                p->k0s = PLAN_K0S_RUN;
                r = reconcile_k0s_argv(cfg, p->address, &p->spec.argv);
                if (r < 0)
                        return r;
                p->spec.env = strv_copy(cfg->k0s_env);
                if (!p->spec.env)
                        return -ENOMEM;
                p->spec.hash = reconcile_spec_hash(p->spec.argv, p->spec.env, k0s_yaml);
                if (!p->spec.hash)
                        return -ENOMEM;
                p->status = strdup_printf("Tailnet ready: %s on %s", cfg->interface, p->address);
        } else {
                /* The gate is closed: no address is in force, whatever the link carries. */
                p->address = mfree(p->address);
                p->status = strdup_printf("Waiting for %s", p->waiting_for);
        }
        if (!p->status)
                return -ENOMEM;

        *ret = TAKE_PTR(p);
        return 0;
}
