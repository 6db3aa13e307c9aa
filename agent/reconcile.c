/* SPDX-License-Identifier: MIT */
/*
 * The pure decision of the agent: (config, facts) -> Plan. It decides whether k0s may run, which
 * address it is pinned to, the text of every file, k0s's argv/env with a hash of all inputs k0s
 * reads only at start, and when to hold k0s (an etcd controller whose address drifted). It never
 * touches a file descriptor, a clock or an effect module: manager.c gathers facts and applies
 * plans.
 */

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "reconcile.h"
#include "render-containerd.h"
#include "render-k0s.h"

Plan *plan_free(Plan *p) {
        if (!p)
                return NULL;
        free(p->address);
        free(p->address6);
        free(p->dns_name);
        free(p->waiting_for);
        for (size_t i = 0; i < p->n_files; i++) {
                free(p->files[i].path);
                free(p->files[i].contents);
        }
        free(p->files);
        strv_free(p->registry_dirs);
        k0s_spec_done(&p->spec);
        free(p->hold_reason);
        strv_free(p->warnings);
        strv_free(p->notices);
        free(p->error);
        free(p->status);
        free(p);
        return NULL;
}

/* Takes contents (also on failure). */
static int plan_add_file(Plan *p, const char *path, char *contents, mode_t mode) {
        PlanFile *f = realloc(p->files, sizeof(PlanFile) * (p->n_files + 1));
        char *c = NULL;

        if (f)
                p->files = f;
        if (f)
                c = strdup(path);
        if (!c) {
                free(contents);
                return -ENOMEM;
        }
        p->files[p->n_files++] = (PlanFile){ .path = c, .contents = contents, .mode = mode };
        return 0;
}

/* Sets waiting_for (and error) unless an earlier reason is already there: the first missing
 * thing is the one the operator sees. Takes both strings. */
static int plan_wait(Plan *p, char *waiting_for, char *error) {
        if (!waiting_for) {
                free(error);
                return -ENOMEM;
        }
        if (p->waiting_for)
                free(waiting_for);
        else
                p->waiting_for = waiting_for;
        if (error && !p->error)
                p->error = error;
        else
                free(error);
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

/* ---- k0s argv ------------------------------------------------------------------------------ */

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

/* k0s.args without --kubelet-extra-args (-> *kubelet, split) so ours and theirs become one flag:
 * k0s keeps only the last --kubelet-extra-args it is given. */
static int split_user_args(const AgentConfig *cfg, char ***kubelet, char ***rest) {
        int r;

        for (size_t i = 0; cfg->k0s_args && cfg->k0s_args[i]; i++) {
                const char *a = cfg->k0s_args[i];
                if (startswith(a, "--kubelet-extra-args="))
                        r = split_ws(a + strlen("--kubelet-extra-args="), kubelet);
                else if (streq(a, "--kubelet-extra-args") && cfg->k0s_args[i + 1])
                        r = split_ws(cfg->k0s_args[++i], kubelet);
                else
                        r = strv_extend(rest, a);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool arg_is_flag(const char *a, const char *flag) {
        size_t n = strlen(flag);
        return strncmp(a, flag, n) == 0 && (a[n] == 0 || a[n] == '=');
}

/* --kubelet-extra-args=... for a kubelet role: our --node-ip first, the failover frequency
 * unless the user set one, then the user's. */
static int kubelet_flag(const K0sArgvFacts *a, char **user, char ***warnings, char **ret) {
        _cleanup_strv_free_ char **merged = NULL;
        _cleanup_free_ char *pin = NULL, *joined = NULL;
        bool user_freq = false;

        pin = a->ipv6 ? strdup_printf("--node-ip=%s,%s", a->ipv4, a->ipv6)
                      : strdup_printf("--node-ip=%s", a->ipv4);
        if (!pin || strv_extend(&merged, pin) < 0)
                return -ENOMEM;
        for (char **i = user; i && *i; i++)
                user_freq = user_freq || arg_is_flag(*i, "--node-status-update-frequency");
        if (a->node_status_update_sec > 0 && user_freq &&
            strv_extendf(
                    warnings,
                    "k0s.args: --node-status-update-frequency in --kubelet-extra-args wins over "
                    "failover.target's %us",
                    a->node_status_update_sec) < 0)
                return -ENOMEM;
        if (a->node_status_update_sec > 0 && !user_freq) {
                _cleanup_free_ char *f = strdup_printf("--node-status-update-frequency=%us",
                                                       a->node_status_update_sec);
                if (!f || strv_extend(&merged, f) < 0)
                        return -ENOMEM;
        }
        for (char **i = user; i && *i; i++)
                /* Ours wins: a user --node-ip would pin kubelet off the tailnet. */
                if (!arg_is_flag(*i, "--node-ip") && strv_extend(&merged, *i) < 0)
                        return -ENOMEM;
        joined = strv_join(merged, " ");
        *ret = joined ? strdup_printf("--kubelet-extra-args=%s", joined) : NULL;
        return *ret ? 0 : -ENOMEM;
}

static int role_args(const AgentConfig *cfg, const K0sArgvFacts *a, char ***argv) {
        _cleanup_free_ char *c = strdup_printf("--config=%s", cfg->k0s_config);
        _cleanup_free_ char *t = strdup_printf("--token-file=%s", strempty(cfg->k0s_token_file));
        int r;

        if (!c || !t)
                return -ENOMEM;
        switch (cfg->role) {
        case K0S_ROLE_WORKER:
                r = strv_extend(argv, "worker");
                break;
        case K0S_ROLE_CONTROLLER:
        case K0S_ROLE_CONTROLLER_WORKER:
        case K0S_ROLE_SINGLE:
                r = strv_extend(argv, "controller");
                if (r >= 0)
                        r = strv_extend(argv, c);
                if (r >= 0 && cfg->role == K0S_ROLE_CONTROLLER_WORKER)
                        r = strv_extend(argv, "--enable-worker=true");
                if (r >= 0 && cfg->role == K0S_ROLE_SINGLE)
                        r = strv_extend(argv, "--single=true");
                break;
        case _K0S_ROLE_MAX:
        case _K0S_ROLE_INVALID:
        default:
                return -EINVAL;
        }
        /* Every role that may join gets the token; `single` never joins. */
        if (r >= 0 && a->token && cfg->role != K0S_ROLE_SINGLE)
                r = strv_extend(argv, t);
        return r;
}

int reconcile_k0s_argv(const AgentConfig *cfg, const K0sArgvFacts *a, char ***ret,
                       char ***warnings) {
        _cleanup_strv_free_ char **argv = NULL, **kubelet = NULL, **rest = NULL;
        _cleanup_free_ char *flag = NULL;
        int r;

        if (!a || !a->ipv4)
                return -EINVAL;
        r = split_user_args(cfg, &kubelet, &rest);
        if (r < 0)
                return r;
        if ((r = strv_extend(&argv, cfg->k0s_binary)) < 0)
                return r;
        r = role_args(cfg, a, &argv);
        if (r < 0)
                return r;

        if (k0s_role_runs_kubelet(cfg->role))
                r = kubelet_flag(a, kubelet, warnings, &flag);
        else if (kubelet) {
                /* A pure controller runs no kubelet; pass the user's flag through unchanged. */
                _cleanup_free_ char *joined = strv_join(kubelet, " ");
                flag = joined ? strdup_printf("--kubelet-extra-args=%s", joined) : NULL;
                r = flag ? 0 : -ENOMEM;
        }
        if (r < 0)
                return r;
        if (flag && (r = strv_extend(&argv, flag)) < 0)
                return r;

        for (char **i = rest; i && *i; i++)
                if ((r = strv_extend(&argv, *i)) < 0)
                        return r;

        *ret = TAKE_PTR(argv);
        return 0;
}

/* ---- registry endpoints -------------------------------------------------------------------- */

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

/* A URL endpoint whose host is a tailnet peer that is known to be unreachable. */
static bool url_endpoint_unreachable(const RegistryEndpoint *e, const TailnetStatus *t,
                                     uint64_t now) {
        _cleanup_free_ char *host = NULL;

        if (!t || !e->url || !(host = url_host(e->url)))
                return false;
        for (size_t j = 0; j < t->n_peers; j++)
                if (peer_matches(&t->peers[j], host))
                        return !tailnet_peer_is_reachable(&t->peers[j], t->self_online, now);
        return false;
}

static int endpoint_copy(const RegistryEndpoint *e, char *url, RegistryEndpoint *ret) {
        char *ca = NULL;

        if (!url || (e->ca && !(ca = strdup(e->ca)))) {
                free(url);
                return -ENOMEM;
        }
        *ret = (RegistryEndpoint){ .url = url, .skip_verify = e->skip_verify, .ca = ca };
        return 0;
}

/* For each peer endpoint i: its resolved URL (NULL if unknown) and reachability. */
static int resolve_peers(const Registry *r, const TailnetStatus *t, uint64_t now, char **urls,
                         bool *reachable, char ***warnings) {
        for (size_t i = 0; i < r->n_endpoints; i++) {
                const RegistryEndpoint *e = &r->endpoints[i];
                const char *ipv4 = NULL;

                if (!e->peer)
                        continue;
                if (!tailnet_status_resolve_peer(t, e->peer, now, &ipv4, &reachable[i])) {
                        const TailnetPeer *peer = tailnet_status_find_peer(t, e->peer);
                        if (strv_extendf(warnings,
                                         "registry %s: tailnet peer '%s' is %s; endpoint left out",
                                         r->name, e->peer,
                                         !t             ? "unknown (no answer from tailscaled yet)"
                                                 : peer ? "known but has no tailnet IPv4"
                                                        : "unknown to tailscaled") < 0)
                                return -ENOMEM;
                        continue;
                }
                urls[i] = strdup_printf("%s://%s:%u", e->scheme ?: "https", ipv4, e->port);
                if (!urls[i])
                        return -ENOMEM;
        }
        return 0;
}

/* Index of the next resolved peer endpoint after *cursor in pass (reachable first, then the
 * others); SIZE_MAX when none is left. */
static size_t next_peer(const Registry *r, char **urls, const bool *reachable, size_t *cursor) {
        while (*cursor < 2 * r->n_endpoints) {
                size_t pass = *cursor / r->n_endpoints, i = *cursor % r->n_endpoints;
                (*cursor)++;
                if (r->endpoints[i].peer && urls[i] && reachable[i] == (pass == 0))
                        return i;
        }
        return SIZE_MAX;
}

int reconcile_registry_endpoints(const Registry *r, const TailnetStatus *t, uint64_t now,
                                 Registry *ret, char ***warnings) {
        _cleanup_free_ char **urls = calloc(r->n_endpoints + 1, sizeof(char *));
        _cleanup_free_ bool *reachable = calloc(r->n_endpoints + 1, sizeof(bool));
        _cleanup_free_ bool *last = calloc(r->n_endpoints + 1, sizeof(bool));
        Registry out = { .name = strdup(r->name) };
        size_t cursor = 0, n = 0, *slot = NULL;
        int k = -ENOMEM;

        out.endpoints = calloc(r->n_endpoints + 1, sizeof(RegistryEndpoint));
        slot = calloc(r->n_endpoints + 1, sizeof(size_t));
        if (!urls || !reachable || !last || !out.name || !out.endpoints || !slot)
                goto finish;
        k = resolve_peers(r, t, now, urls, reachable, warnings);
        if (k < 0)
                goto finish;

        /* Peer slots take the reachable peers first; URL endpoints keep their slots. */
        for (size_t i = 0; i < r->n_endpoints; i++) {
                size_t j = r->endpoints[i].peer ? next_peer(r, urls, reachable, &cursor) : i;
                if (j == SIZE_MAX)
                        continue;
                last[n] =
                        !r->endpoints[j].peer && url_endpoint_unreachable(&r->endpoints[j], t, now);
                slot[n++] = j;
        }
        /* Then URL endpoints on a peer known to be down go last (containerd tries hosts in
         * file order and waits out a dead one's dial timeout). */
        for (size_t pass = 0; pass < 2; pass++)
                for (size_t m = 0; m < n; m++) {
                        size_t j = slot[m];
                        if (last[m] != (pass == 1))
                                continue;
                        k = endpoint_copy(&r->endpoints[j],
                                          r->endpoints[j].peer ? TAKE_PTR(urls[j])
                                                               : strdup(r->endpoints[j].url),
                                          &out.endpoints[out.n_endpoints]);
                        if (k < 0)
                                goto finish;
                        out.n_endpoints++;
                }
        *ret = out;
        out = (Registry){};
        k = 0;
finish:
        for (size_t i = 0; urls && i < r->n_endpoints; i++)
                free(urls[i]);
        free(slot);
        registry_done(&out);
        return k;
}

static int render_registries(const AgentConfig *cfg, const NodeFacts *f, const K0sVersion *v,
                             Plan *p) {
        int r;

        for (size_t i = 0; i < cfg->n_registries; i++) {
                const Registry *reg = &cfg->registries[i];
                _cleanup_(registry_done) Registry resolved = {};
                _cleanup_free_ char *dir =
                        strdup_printf("%s/%s", cfg->containerd_certs_dir, reg->name);
                _cleanup_free_ char *path = dir ? strdup_printf("%s/hosts.toml", dir) : NULL;
                char *text = NULL;

                if (!path || strv_extend(&p->registry_dirs, dir) < 0)
                        return -ENOMEM;
                r = reconcile_registry_endpoints(reg, f->tailnet, f->now_realtime_usec, &resolved,
                                                 &p->warnings);
                if (r < 0)
                        return r;
                if (resolved.n_endpoints == 0) {
                        /* Peers are unknown only until tailscaled tells (after a power cut, or
                         * before the first /status with peers), and tailnet IPs are stable: the
                         * last hosts.toml is the best guess, so it stays. */
                        if (strv_extendf(
                                    &p->warnings,
                                    "registry %s: no endpoint could be resolved; %s is left as "
                                    "it was",
                                    reg->name, path) < 0)
                                return -ENOMEM;
                        continue;
                }
                r = render_hosts_toml(&resolved, NULL, &text);
                if (r < 0)
                        return r;
                r = plan_add_file(p, path, text, 0644);
                if (r < 0)
                        return r;
        }

        if (cfg->n_registries > 0) {
                char *text = NULL;
                r = render_containerd_dropin(k0s_version_containerd_format(v),
                                             cfg->containerd_certs_dir, &text);
                if (r < 0)
                        return r;
                return plan_add_file(p, cfg->containerd_dropin, text, 0644);
        }
        return 0;
}

/* ---- the gate ------------------------------------------------------------------------------ */

/* The tailnet IPv4 on the link, or NULL with *ret_waiting saying what is missing. The gate is
 * the data plane: tailscale0 up with its tailnet IPv4 and (require_running) BackendState
 * Running. Self.Online is the control server's long-poll and goes false in exactly the outage
 * this agent exists for (facts/tailscale.md, gate): it is never required. */
static const char *gate_ipv4(const AgentConfig *cfg, const NodeFacts *f, char **ret_waiting) {
        const NetState *n = f->net;
        const TailnetStatus *t = f->tailnet;
        const char *addr = NULL;

        *ret_waiting = NULL;
        if (!n || !n->present)
                return *ret_waiting = strdup_printf("%s to appear", cfg->interface), NULL;
        if (!n->up)
                return *ret_waiting = strdup_printf("%s to come up", cfg->interface), NULL;
        for (size_t i = 0; i < n->n_ipv4 && !addr; i++)
                if (address_is_tailnet_ipv4(n->ipv4[i]))
                        addr = n->ipv4[i];
        if (!addr)
                *ret_waiting = strdup_printf("%s to get a tailnet IPv4 address", cfg->interface);
        else if (!cfg->require_running)
                return addr;
        else if (!t)
                *ret_waiting = strdup_printf("tailscaled LocalAPI: %s",
                                             f->tailnet_error ?: "no answer yet");
        else if (t->backend_state != BACKEND_RUNNING)
                *ret_waiting = strdup_printf("tailscaled: BackendState %s",
                                             backend_state_to_string(t->backend_state) ?: "?");
        else if (!t->ipv4)
                *ret_waiting = strdup("tailscaled to report a tailnet IPv4 address");
        else {
                /* The address tailscaled owns must be the one on the link. */
                for (size_t i = 0; i < n->n_ipv4; i++)
                        if (streq(n->ipv4[i], t->ipv4))
                                return n->ipv4[i];
                *ret_waiting = strdup_printf("%s to get %s", cfg->interface, t->ipv4);
        }
        return NULL;
}

/* k0s.ipv6: the tailnet IPv6 of the link (tailscaled's own when it is there). */
static const char *gate_ipv6(const NodeFacts *f) {
        const NetState *n = f->net;
        const char *addr = NULL;

        for (size_t i = 0; n && i < n->n_ipv6; i++) {
                if (!address_is_tailnet_ipv6(n->ipv6[i]))
                        continue;
                if (f->tailnet && streq_ptr(f->tailnet->ipv6, n->ipv6[i]))
                        return n->ipv6[i];
                addr = addr ?: n->ipv6[i];
        }
        return addr;
}

static int gate(const AgentConfig *cfg, const NodeFacts *f, Plan *p) {
        char *w = NULL;
        const char *v4 = gate_ipv4(cfg, f, &w), *v6 = NULL;

        if (!v4)
                return plan_wait(p, w ?: NULL, NULL);
        if (cfg->k0s_ipv6 && !(v6 = gate_ipv6(f)))
                return plan_wait(p,
                                 strdup_printf("%s to get a tailnet IPv6 address (k0s.ipv6)",
                                               cfg->interface),
                                 NULL);
        p->address = strdup(v4);
        if (!p->address || (v6 && !(p->address6 = strdup(v6))))
                return -ENOMEM;
        return 0;
}

/* ---- facts other than the tailnet ---------------------------------------------------------- */

/* The k0s whose files are written: the running one while one runs, else the binary on disk. */
static const K0sVersion *effective_version(const NodeFacts *f) {
        return f->k0s_running_version ?: f->k0s_version;
}

static int check_base_config(const AgentConfig *cfg, const NodeFacts *f, Plan *p) {
        int e = f->base_config.error;

        if (!k0s_role_is_controller(cfg->role) || e == 0 || e == -ENOENT)
                return 0;
        /* A directory, a FIFO, a file over the size limit: k0s must not start on the defaults
         * (it would if the file were absent), and the daemon keeps running and reporting. */
        return plan_wait(p, strdup_printf("a readable %s", cfg->k0s_base_config),
                         strdup_printf("%s: %s", cfg->k0s_base_config, strerror(-e)));
}

/* Returns whether --token-file is passed. */
static int check_token(const AgentConfig *cfg, const NodeFacts *f, Plan *p, bool *ret_token) {
        int e = f->token_file_error;

        if (!cfg->k0s_token_file) { /* token_file: "" — K0S_TOKEN in k0s.env joins instead */
                *ret_token = false;
                return 0;
        }
        *ret_token = e == 0 && cfg->role != K0S_ROLE_SINGLE;
        if (e == 0 || cfg->role == K0S_ROLE_SINGLE)
                return 0;
        if (cfg->role == K0S_ROLE_WORKER)
                return plan_wait(p,
                                 strdup_printf("the join token in %s (k0s token create "
                                               "--role=worker on a controller)",
                                               cfg->k0s_token_file),
                                 strdup_printf("%s: %s: a worker cannot join without it",
                                               cfg->k0s_token_file, strerror(-e)));
        /* cmd/controller/controller.go: a controller with no etcd data and no token bootstraps
         * a new cluster with its own CA; once joined it never reads the token again. */
        return strv_extendf(
                &p->notices,
                "%s: %s: this controller starts without --token-file, so on first start "
                "it bootstraps a new cluster (controllers 2..n need a controller join "
                "token there)",
                cfg->k0s_token_file, strerror(-e));
}

static int check_version(const AgentConfig *cfg, const NodeFacts *f, Plan *p) {
        const K0sVersion *v = effective_version(f), *run = f->k0s_running_version;

        if (!v)
                return plan_wait(p, strdup("the k0s version (`k0s version`)"), NULL);
        p->upgrade_pending = run && f->k0s_version && !streq(run->text, f->k0s_version->text);
        /* cmd/token/create.go, cmd/kubeconfig/admin.go: from 1.28.2 they read the running
         * controller's runtime config (pkg/config/cli.go GetCmdOpts), which names our file;
         * before, always --config, default /etc/k0s/k0s.yaml. */
        if (k0s_role_is_controller(cfg->role) && !k0s_version_at_least(v, 1, 28, 2))
                return strv_extendf(&p->warnings,
                                    "k0s %s is older than 1.28.2: `k0s token create` and `k0s "
                                    "kubeconfig admin` read /etc/k0s/k0s.yaml, not %s, so tokens "
                                    "and kubeconfigs carry the LAN address; run them with "
                                    "--config %s, or upgrade k0s",
                                    v->text, cfg->k0s_config, cfg->k0s_config);
        return 0;
}

/* The clock holds the first start only: a running k0s is never stopped for it. */
static int check_clock(const NodeFacts *f, Plan *p) {
        switch (f->clock) {
        case CLOCK_FACT_WAITING:
                if (f->k0s_running_version)
                        return 0;
                return plan_wait(p, strdup("the clock to be synchronized (clock.wait_sync)"), NULL);
        case CLOCK_FACT_TIMED_OUT:
                return strv_extendf(&p->warnings,
                                    "the clock is not synchronized and clock.timeout passed: k0s "
                                    "starts anyway (TLS, etcd leases and certificates may fail "
                                    "until it is)");
        case CLOCK_FACT_SYNCED:
        case CLOCK_FACT_NOT_NEEDED:
        case _CLOCK_FACT_MAX:
        case _CLOCK_FACT_INVALID:
        default:
                return 0;
        }
}

/* ---- k0s.yaml, the etcd address hold, k0s ---------------------------------------------------- */

static int failover_profile(const AgentConfig *cfg, Plan *p, FailoverProfile *fp, bool *ret_on) {
        uint64_t t = cfg->failover_target_usec / UINT64_C(1000000), sum;

        *ret_on = false;
        if (cfg->failover_target_usec == 0)
                return 0;
        if (failover_profile_compute(cfg->failover_target_usec, fp) < 0)
                return strv_extendf(&p->warnings,
                                    "failover.target is under 20s, which no healthy node survives "
                                    "without flapping; the failover profile is off");
        *ret_on = true;
        sum = (uint64_t) fp->grace_sec + fp->monitor_period_sec + fp->toleration_sec;
        if (sum > t)
                return strv_extendf(&p->warnings,
                                    "failover.target %" PRIu64 "s is faster than a node on a lossy "
                                    "link survives; using the fastest safe profile: %" PRIu64
                                    " s (grace %us + monitor period %us + toleration %us)",
                                    t, sum, fp->grace_sec, fp->monitor_period_sec,
                                    fp->toleration_sec);
        return 0;
}

/* --data-dir from k0s.args, for the commands in a hold message. */
static const char *k0s_data_dir(const AgentConfig *cfg) {
        for (size_t i = 0; cfg->k0s_args && cfg->k0s_args[i]; i++) {
                if (startswith(cfg->k0s_args[i], "--data-dir="))
                        return cfg->k0s_args[i] + strlen("--data-dir=");
                if (streq(cfg->k0s_args[i], "--data-dir") && cfg->k0s_args[i + 1])
                        return cfg->k0s_args[i + 1];
        }
        return "/var/lib/k0s";
}

/* An etcd member is registered under its peer URL: a restart with a new peerAddress does not
 * update the membership and can break quorum. The commands are k0s's own (cmd/etcd/list.go
 * `member-list`, cmd/etcd/leave.go `leave --peer-address`, docs/remove_controller.md); a
 * controller rejoins as a new member when its etcd data dir is gone (cmd/controller/
 * controller.go needToJoin: <data-dir>/etcd/member/snap/db) and it has a controller token. */
static int check_hold(const AgentConfig *cfg, const NodeFacts *f, bool etcd_member, Plan *p) {
        const char *old = f->last_address, *new = p->address, *dd = k0s_data_dir(cfg);

        if (!etcd_member || cfg->role == K0S_ROLE_SINGLE || !old || !new || streq(old, new) ||
            streq_ptr(cfg->k0s_accept_address, new))
                return 0;
        p->hold = true;
        p->hold_reason = strdup_printf(
                "the tailnet IPv4 of this etcd controller changed from %s to %s. A changed tailnet "
                "IP usually means the node got a new identity (it was logged out, or its key was "
                "ephemeral). k0s is kept as it is: etcd knows this member as https://%s:2380, and "
                "restarting it on %s would not update the membership and can break quorum. If "
                "the old identity can come back, restore it and nothing else is needed. To move "
                "the member: on another controller run `k0s etcd member-list` and `k0s etcd leave "
                "--peer-address=%s`, and `k0s token create --role=controller` into %s on this "
                "node; here run `systemctl stop k0s-tsagent`, `mv %s/etcd %s/etcd.old`, "
                "`k0s-tsagent accept-address %s` and `systemctl start k0s-tsagent` (or set "
                "k0s.accept_address: %s)",
                old, new, old, new, old, cfg->k0s_token_file, dd, dd, new, new);
        return p->hold_reason ? 0 : -ENOMEM;
}

static int render_k0s_yaml(const AgentConfig *cfg, const NodeFacts *f, const FailoverProfile *fp,
                           Plan *p, char **ret_yaml) {
        _cleanup_(k0s_render_notes_done) K0sRenderNotes notes = {};
        _cleanup_free_ char *yaml = NULL, *error = NULL;
        K0sFacts kf = {
                .ipv4 = p->address, .ipv6 = p->address6, .dns_name = p->dns_name, .failover = fp
        };
        int r;

        r = render_k0s_config(f->base_config.content, f->base_config.len, cfg->k0s_base_config, cfg,
                              &kf, &yaml, &notes, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                char *e = error ? TAKE_PTR(error)
                                : strdup_printf("%s: cannot render: %s", cfg->k0s_base_config,
                                                strerror(-r));
                return plan_wait(p, strdup_printf("a valid %s", cfg->k0s_base_config), e);
        }
        for (char **w = notes.warnings; w && *w; w++)
                if (strv_extend(&p->warnings, *w) < 0)
                        return -ENOMEM;
        r = check_hold(cfg, f, notes.etcd_member, p);
        if (r < 0 || p->hold)
                return r;
        *ret_yaml = TAKE_PTR(yaml);
        /* Last, so a restart never sees a new k0s.yaml with old registry files. */
        char *copy = strdup(*ret_yaml);
        return copy ? plan_add_file(p, cfg->k0s_config, copy, 0600) : -ENOMEM;
}

static int plan_run(const AgentConfig *cfg, const NodeFacts *f, const FailoverProfile *fp,
                    bool token, const char *k0s_yaml, Plan *p) {
        K0sArgvFacts a = { .ipv4 = p->address,
                           .ipv6 = p->address6,
                           .token = token,
                           .node_status_update_sec = fp ? fp->update_sec : 0 };
        _cleanup_free_ char *extra = NULL;
        int r;

        r = reconcile_k0s_argv(cfg, &a, &p->spec.argv, &p->warnings);
        if (r < 0)
                return r;
        p->spec.env = strv_copy(cfg->k0s_env);
        p->spec.hash =
                p->spec.env ? reconcile_spec_hash(p->spec.argv, p->spec.env, k0s_yaml) : NULL;
        if (!p->spec.hash)
                return -ENOMEM;
        p->spec.binary_id = f->k0s_binary_id;
        p->gate_open = true;
        p->k0s = PLAN_K0S_RUN;

        const TailnetStatus *t = f->tailnet;
        extra = strdup_printf(
                "%s%s%s%s%s%s%s", p->address6 ? " and " : "", p->address6 ?: "",
                t && t->backend_state == BACKEND_RUNNING && !t->self_online
                        ? "; control server unreachable (Self.Online false), data plane up"
                        : "",
                p->upgrade_pending ? "; restart pending an upgrade: k0s " : "",
                p->upgrade_pending ? f->k0s_running_version->text : "",
                p->upgrade_pending ? " runs, the binary on disk is " : "",
                p->upgrade_pending ? f->k0s_version->text : "");
        if (!extra)
                return -ENOMEM;
        p->status = strdup_printf("Tailnet ready: %s on %s%s", cfg->interface, p->address, extra);
        return p->status ? 0 : -ENOMEM;
}

int reconcile(const AgentConfig *cfg, const NodeFacts *f, Plan **ret) {
        _cleanup_(plan_freep) Plan *p = calloc(1, sizeof(Plan));
        _cleanup_free_ char *k0s_yaml = NULL;
        FailoverProfile fp;
        bool token = false, failover = false;
        int r;

        if (!p || !(p->warnings = calloc(1, sizeof(char *))) ||
            !(p->notices = calloc(1, sizeof(char *))))
                return -ENOMEM;
        p->k0s = PLAN_K0S_WAIT;

        r = gate(cfg, f, p);
        if (r >= 0 && f->tailnet && f->tailnet->dns_name &&
            !(p->dns_name = strdup(f->tailnet->dns_name)))
                r = -ENOMEM;
        /* containerd's files depend on the k0s version (drop-in format) but not on the gate:
         * they are written as soon as the version is known, so they are in place before k0s. */
        if (r >= 0 && effective_version(f))
                r = render_registries(cfg, f, effective_version(f), p);
        if (r >= 0)
                r = check_version(cfg, f, p);
        if (r >= 0)
                r = check_base_config(cfg, f, p);
        if (r >= 0)
                r = check_token(cfg, f, p, &token);
        if (r >= 0)
                r = check_clock(f, p);
        if (r >= 0)
                r = failover_profile(cfg, p, &fp, &failover);
        if (r >= 0 && !p->waiting_for && k0s_role_is_controller(cfg->role))
                r = render_k0s_yaml(cfg, f, failover ? &fp : NULL, p, &k0s_yaml);
        if (r < 0)
                return r;

        if (!p->waiting_for && !p->hold)
                r = plan_run(cfg, f, failover ? &fp : NULL, token, k0s_yaml, p);
        else {
                /* No address is in force while k0s is not run with it, whatever the link has. */
                p->status = p->hold ? strdup_printf("Holding k0s: the tailnet IPv4 of this etcd "
                                                    "controller changed %s -> %s; confirm with "
                                                    "`k0s-tsagent accept-address %s`",
                                                    f->last_address, p->address, p->address)
                                    : strdup_printf("Waiting for %s", p->waiting_for);
                if (p->hold && !p->waiting_for)
                        p->waiting_for = strdup_printf("the operator to accept %s "
                                                       "(k0s-tsagent accept-address)",
                                                       p->address);
                p->address = mfree(p->address);
                p->address6 = mfree(p->address6);
                r = p->status && p->waiting_for ? 0 : -ENOMEM;
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(p);
        return 0;
}
