/* SPDX-License-Identifier: MIT */
/*
 * status.json: built from the modules' getters and written by the daemon through atomic-file,
 * read back by `k0s-tsagent status`. Owns the file format and the human table; knows nothing of
 * the event loop and decides nothing.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json-util.h"
#include "util.h"
#include "atomic-file.h"
#include "status.h"

/* Longest text of one status.json field: paths and error messages fit, a hostile blob does not. */
#define STATUS_TEXT_MAX 4096

const char *format_timestamp(char buf[static 32], uint64_t realtime_usec) {
        time_t t = (time_t) (realtime_usec / USEC_PER_SEC);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, 32, "?");
        return buf;
}

/* Every adder below records a failed allocation in *ok instead of returning, so a builder reads
 * as a list of fields and still checks every cJSON result. Strings are sanitized: they may come
 * from the LocalAPI, from k0s or from files. */
static void put_str(cJSON *o, const char *k, const char *v, bool *ok) {
        if (!o)
                return (void) (*ok = false);
        if (!v) {
                if (!cJSON_AddNullToObject(o, k))
                        *ok = false;
                return;
        }
        _cleanup_free_ char *clean = str_sanitize(v, STATUS_TEXT_MAX);
        if (!clean || !cJSON_AddStringToObject(o, k, clean))
                *ok = false;
}

static void put_num(cJSON *o, const char *k, double v, bool *ok) {
        if (!o || !cJSON_AddNumberToObject(o, k, v))
                *ok = false;
}

static void put_bool(cJSON *o, const char *k, bool v, bool *ok) {
        if (!o || !cJSON_AddBoolToObject(o, k, v))
                *ok = false;
}

static void push_str(cJSON *a, const char *v, bool *ok) {
        _cleanup_free_ char *clean = str_sanitize(v, STATUS_TEXT_MAX);
        cJSON *i = clean ? cJSON_CreateString(clean) : NULL;
        if (!a || !i || !cJSON_AddItemToArray(a, i)) {
                cJSON_Delete(i);
                *ok = false;
        }
}

static cJSON *put_obj(cJSON *o, const char *k, bool *ok) {
        cJSON *c = o ? cJSON_AddObjectToObject(o, k) : NULL;
        if (!c)
                *ok = false;
        return c;
}

static cJSON *put_arr(cJSON *o, const char *k, bool *ok) {
        cJSON *c = o ? cJSON_AddArrayToObject(o, k) : NULL;
        if (!c)
                *ok = false;
        return c;
}

static void build_interface(cJSON *root, const StatusSources *src, bool *ok) {
        const NetState *n = netwatch_get_state(src->netwatch);
        cJSON *i = put_obj(root, "interface", ok);

        put_str(i, "name", src->config->interface, ok);
        put_bool(i, "present", n && n->present, ok);
        put_bool(i, "up", n && n->up, ok);
        put_num(i, "ifindex", n ? n->ifindex : 0, ok);
        put_num(i, "mtu", n ? n->mtu : 0, ok);
        cJSON *a4 = put_arr(i, "ipv4", ok);
        for (size_t j = 0; n && j < n->n_ipv4; j++)
                push_str(a4, n->ipv4[j], ok);
        cJSON *a6 = put_arr(i, "ipv6", ok);
        for (size_t j = 0; n && j < n->n_ipv6; j++)
                push_str(a6, n->ipv6[j], ok);
        put_num(i, "recreated", n ? (double) n->n_recreated : 0, ok);
        put_num(i, "resyncs", (double) netwatch_get_resyncs(src->netwatch), ok);
}

static void build_tailnet(cJSON *root, const StatusSources *src, bool *ok) {
        const TailnetStatus *t = src->tailnet ? tailnet_get_status(src->tailnet) : NULL;
        cJSON *tn = put_obj(root, "tailnet", ok);

        put_bool(tn, "required", src->config->require_running, ok);
        put_bool(tn, "connected", src->tailnet && tailnet_is_connected(src->tailnet), ok);
        put_str(tn, "backend_state", t ? backend_state_to_string(t->backend_state) : NULL, ok);
        put_bool(tn, "online", t && t->self_online, ok);
        put_str(tn, "ipv4", t ? t->ipv4 : NULL, ok);
        put_str(tn, "ipv6", t ? t->ipv6 : NULL, ok);
        put_str(tn, "dns_name", t ? t->dns_name : NULL, ok);
        put_str(tn, "version", t ? t->version : NULL, ok);
        put_str(tn, "error", src->tailnet ? tailnet_get_error(src->tailnet) : NULL, ok);
        put_num(tn, "reconnects", src->tailnet ? (double) tailnet_get_reconnects(src->tailnet) : 0,
                ok);
}

static void build_health(cJSON *k, const StatusSources *src, bool *ok) {
        const K0sStatus *ks = src->health ? health_get_status(src->health) : NULL;
        const char *he = src->health ? health_get_error(src->health) : NULL;
        cJSON *h = put_obj(k, "health", ok);

        if (ks || he)
                put_bool(h, "ok", ks != NULL, ok);
        else
                put_str(h, "ok", NULL, ok);
        put_str(h, "error", he, ok);
        put_str(h, "role", ks ? ks->role : NULL, ok);
        put_str(h, "k0s_version", ks ? ks->version : NULL, ok);
}

/* While no k0s runs, `k0s token create` and `k0s kubeconfig admin` read the config named by
 * --config, default /etc/k0s/k0s.yaml (the LAN address); with a running controller they read its
 * runtime config, which names the generated file (config.GetCmdOpts() and LoadRuntimeConfig() in
 * k0s pkg/config/cli.go, runtime.go; cmd/token/create.go, cmd/kubeconfig/admin.go). So a
 * stopped controller's status names the commands that give the tailnet address. */
static void build_join_commands(cJSON *k, const StatusSources *src, bool *ok) {
        const AgentConfig *c = src->config;
        if (!k0s_role_is_controller(c->role) || supervisor_get_pid(src->supervisor) > 0)
                return;
        cJSON *a = put_arr(k, "join_commands", ok);
        _cleanup_free_ char *t =
                strdup_printf("k0s token create --config=%s --role=worker", c->k0s_config);
        _cleanup_free_ char *kc = strdup_printf("k0s kubeconfig admin --config=%s", c->k0s_config);
        if (!t || !kc)
                return (void) (*ok = false);
        push_str(a, t, ok);
        push_str(a, kc, ok);
}

static void build_k0s(cJSON *root, const StatusSources *src, bool *ok) {
        const Supervisor *s = src->supervisor;
        const Plan *p = src->plan;
        uint64_t started = supervisor_get_started_usec(s);
        cJSON *k = put_obj(root, "k0s", ok);
        char ts[32];

        put_str(k, "state", supervisor_state_to_string(supervisor_get_state(s)) ?: "?", ok);
        put_num(k, "pid", supervisor_get_pid(s), ok);
        put_bool(k, "adopted", supervisor_is_adopted(s), ok);
        put_str(k, "started", started ? format_timestamp(ts, started) : NULL, ok);
        put_num(k, "uptime_sec", 0, ok);
        put_num(k, "restarts", supervisor_get_restarts(s), ok);
        put_str(k, "last_exit", supervisor_get_last_exit(s), ok);
        put_str(k, "version", src->k0s_version ? src->k0s_version->text : NULL, ok);
        put_str(k, "inputs_hash", supervisor_get_hash(s), ok);
        cJSON *argv = put_arr(k, "argv", ok);
        for (char **a = p && p->gate_open ? p->spec.argv : NULL; a && *a; a++)
                push_str(argv, *a, ok);
        put_str(k, "running_version",
                src->k0s_running_version ? src->k0s_running_version->text : NULL, ok);
        put_str(k, "base_config_error", src->base_config_error, ok);
        put_str(k, "last_address", src->last_address, ok);
        build_join_commands(k, src, ok);
        build_health(k, src, ok);
}

static void build_files(cJSON *root, const StatusSources *src, bool *ok) {
        cJSON *fa = put_arr(root, "files", ok);
        char ts[32];

        for (size_t j = 0; j < files_get_count(src->files); j++) {
                const FileRecord *r = files_get(src->files, j);
                cJSON *f = cJSON_CreateObject();
                if (!f || !fa || !cJSON_AddItemToArray(fa, f)) {
                        cJSON_Delete(f);
                        *ok = false;
                        return;
                }
                put_str(f, "path", r->path, ok);
                put_str(f, "written",
                        r->written_usec ? format_timestamp(ts, r->written_usec) : NULL, ok);
                put_str(f, "error", r->error, ok);
        }
}

/* Self.Online is the control-server long-poll: reported, never required (the data plane works
 * without it, facts/tailscale.md). */
static const char *offline_note(const StatusSources *src) {
        const TailnetStatus *t = src->tailnet ? tailnet_get_status(src->tailnet) : NULL;
        return t && t->backend_state == BACKEND_RUNNING && !t->self_online
                ? "; tailnet control server unreachable (data plane up)"
                : "";
}

char *status_line(const StatusSources *src, bool stopping) {
        const Supervisor *s = src->supervisor;
        const Plan *p = src->plan;
        pid_t pid = supervisor_get_pid(s);
        const char *role = k0s_role_to_string(src->config->role) ?: "?";
        char *line = NULL;

        if (stopping)
                return pid > 0 ? strdup_printf("Stopping k0s (pid %d)", (int) pid)
                               : strdup("Stopping");

        if (!p->gate_open) {
                if (pid > 0)
                        return strdup_printf("%s; k0s %s keeps running (pid %d)", p->status, role,
                                             (int) pid);
                return strdup(p->status);
        }

        switch (supervisor_get_state(s)) {
        case SUPERVISOR_RUNNING:
                line = strdup_printf("k0s %s running (pid %d) on %s%s", role, (int) pid, p->address,
                                     offline_note(src));
                break;
        case SUPERVISOR_SETTLING:
                line = strdup_printf(
                        "k0s %s running (pid %d); its inputs changed, restart "
                        "pending (settle %llus)",
                        role, (int) pid,
                        (unsigned long long) (src->config->settle_usec / USEC_PER_SEC));
                break;
        case SUPERVISOR_STOPPING:
                line = strdup_printf("Restarting k0s %s: waiting for pid %d to stop", role,
                                     (int) pid);
                break;
        case SUPERVISOR_BACKOFF:
                line = strdup_printf("k0s %s %s; restarting after backoff", role,
                                     supervisor_get_last_exit(s) ?: "exited");
                break;
        case SUPERVISOR_IDLE:
                line = strdup_printf("Starting k0s %s on %s", role, p->address);
                break;
        case _SUPERVISOR_STATE_MAX:
        case _SUPERVISOR_STATE_INVALID:
                line = strdup("?");
                break;
        }
        if (line && src->health && health_get_error(src->health) && pid > 0) {
                char *l2 = strdup_printf("%s; health: %s", line, health_get_error(src->health));
                if (l2) {
                        free(line);
                        line = l2;
                }
        }
        return line;
}

cJSON *status_build(const StatusSources *src) {
        const AgentConfig *c = src->config;
        const Plan *p = src->plan;
        bool ok = true;

        _cleanup_(cJSON_Deletep) cJSON *root = cJSON_CreateObject();
        if (!root)
                return NULL;
        put_str(root, "agent_version", PACKAGE_VERSION, &ok);
        put_num(root, "agent_pid", getpid(), &ok);
        put_str(root, "status", src->status, &ok);
        put_str(root, "role", k0s_role_to_string(c->role) ?: "?", &ok);
        put_str(root, "gate", p && p->gate_open ? "open" : "closed", &ok);
        put_str(root, "waiting_for", p ? p->waiting_for : "startup", &ok);
        put_str(root, "address", p ? p->address : NULL, &ok);
        put_str(root, "clock", src->clock, &ok);
        build_interface(root, src, &ok);
        build_tailnet(root, src, &ok);
        build_k0s(root, src, &ok);
        build_files(root, src, &ok);
        put_bool(root, "hold", p && p->hold, &ok);
        put_str(root, "hold_reason", p ? p->hold_reason : NULL, &ok);
        put_bool(root, "upgrade_pending", p && p->upgrade_pending, &ok);
        cJSON *w = put_arr(root, "warnings", &ok);
        for (char **x = p ? p->warnings : NULL; x && *x; x++)
                push_str(w, *x, &ok);
        cJSON *nt = put_arr(root, "notices", &ok);
        for (char **x = p ? p->notices : NULL; x && *x; x++)
                push_str(nt, *x, &ok);
        put_str(root, "last_error", src->last_error, &ok);
        return ok ? TAKE_PTR(root) : NULL;
}

int status_write(const char *state_dir, const cJSON *root) {
        _cleanup_free_ char *path = strdup_printf("%s/%s", state_dir, STATUS_FILE_NAME);
        _cleanup_free_ char *text = cJSON_Print(root);
        if (!path || !text)
                return -ENOMEM;
        size_t n = strlen(text);
        char *t = realloc(text, n + 2);
        if (!t)
                return -ENOMEM;
        text = t;
        text[n] = '\n';
        text[n + 1] = 0;
        return atomic_file_write(path, text, n + 1, 0644);
}

static const char *jstr(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *key, double def) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static const char *jbool(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsTrue(v) ? "yes" : cJSON_IsFalse(v) ? "no" : "-";
}

static void print_list(FILE *out, const cJSON *arr) {
        const cJSON *i;
        bool first = true;
        cJSON_ArrayForEach(i, arr) {
                if (cJSON_IsString(i)) {
                        fprintf(out, "%s%s", first ? "" : ", ", i->valuestring);
                        first = false;
                }
        }
        if (first)
                fputs("-", out);
}

static uint64_t parse_timestamp(const char *s) {
        struct tm tm = { 0 };
        if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm))
                return 0;
        time_t t = timegm(&tm);
        return t < 0 ? 0 : (uint64_t) t;
}

static void format_uptime(char *buf, size_t n, uint64_t sec) {
        if (sec >= 86400)
                snprintf(buf, n, "%llud %lluh", (unsigned long long) sec / 86400,
                         (unsigned long long) (sec % 86400) / 3600);
        else if (sec >= 3600)
                snprintf(buf, n, "%lluh %llum", (unsigned long long) sec / 3600,
                         (unsigned long long) (sec % 3600) / 60);
        else if (sec >= 60)
                snprintf(buf, n, "%llum %llus", (unsigned long long) sec / 60,
                         (unsigned long long) sec % 60);
        else
                snprintf(buf, n, "%llus", (unsigned long long) sec);
}

static int status_read(const char *state_dir, cJSON **ret) {
        _cleanup_free_ char *path = strdup_printf("%s/%s", state_dir, STATUS_FILE_NAME);
        _cleanup_free_ char *text = NULL;
        size_t len;

        if (!path)
                return -ENOMEM;
        int r = read_file_full(path, 16u * 1024u * 1024u, &text, &len);
        if (r < 0)
                return r;
        cJSON *root = cJSON_ParseWithLength(text, len);
        if (!root || !cJSON_IsObject(root)) {
                cJSON_Delete(root);
                return -EBADMSG;
        }
        *ret = root;
        return 0;
}

int status_read_agent(const char *state_dir, pid_t *ret_pid, char **ret_ipv4) {
        _cleanup_(cJSON_Deletep) cJSON *root = NULL;
        int r = status_read(state_dir, &root);
        if (r < 0)
                return r;
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(root, "tailnet");
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(root, "interface");
        const cJSON *v4 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(i, "ipv4"), 0);
        const char *ip = jstr(tn, "ipv4") ?: cJSON_IsString(v4) ? v4->valuestring : NULL;
        double pid = jnum(root, "agent_pid", 0);
        char *copy = ip ? strdup(ip) : NULL;
        if (ip && !copy)
                return -ENOMEM;
        *ret_pid = pid > 0 && pid < 1 << 30 ? (pid_t) pid : 0;
        *ret_ipv4 = copy;
        return 0;
}

static void print_human(const cJSON *root, const cJSON *k0s, const char *up, FILE *out) {
        const cJSON *iface = cJSON_GetObjectItemCaseSensitive(root, "interface");
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(root, "tailnet");
        const cJSON *health = cJSON_GetObjectItemCaseSensitive(k0s, "health");

        fprintf(out, "%-12s %s\n", "Status:", jstr(root, "status") ?: "-");
        fprintf(out, "%-12s %s%s%s\n", "Gate:", jstr(root, "gate") ?: "-",
                jstr(root, "waiting_for") ? ", waiting for " : "", jstr(root, "waiting_for") ?: "");
        fprintf(out, "%-12s %s\n", "Address:", jstr(root, "address") ?: "-");
        if (jstr(root, "clock"))
                fprintf(out, "%-12s %s\n", "Clock:", jstr(root, "clock"));
        fprintf(out, "%-12s %s present=%s up=%s ifindex=%.0f\n",
                "Interface:", jstr(iface, "name") ?: "-", jbool(iface, "present"),
                jbool(iface, "up"), jnum(iface, "ifindex", 0));
        fprintf(out, "%-12s ", "  IPv4:");
        print_list(out, cJSON_GetObjectItemCaseSensitive(iface, "ipv4"));
        fprintf(out, "\n%-12s ", "  IPv6:");
        print_list(out, cJSON_GetObjectItemCaseSensitive(iface, "ipv6"));
        fprintf(out, "\n%-12s connected=%s state=%s online=%s\n",
                "Tailnet:", jbool(tn, "connected"), jstr(tn, "backend_state") ?: "-",
                jbool(tn, "online"));
        fprintf(out, "%-12s %s %s\n", "  Self:", jstr(tn, "ipv4") ?: "-",
                jstr(tn, "dns_name") ?: "");
        if (jstr(tn, "error"))
                fprintf(out, "%-12s %s\n", "  Error:", jstr(tn, "error"));
        fprintf(out, "%-12s %s", "k0s:", jstr(k0s, "state") ?: "-");
        if (jnum(k0s, "pid", 0) > 0)
                fprintf(out, " (pid %.0f%s)", jnum(k0s, "pid", 0),
                        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(k0s, "adopted")) ? ", adopted"
                                                                                       : "");
        fputc('\n', out);
        fprintf(out, "%-12s %s", "  Version:", jstr(k0s, "version") ?: "-");
        if (jstr(k0s, "running_version") &&
            !streq(jstr(k0s, "running_version"), jstr(k0s, "version") ?: ""))
                fprintf(out, " (running: %s)", jstr(k0s, "running_version"));
        fputc('\n', out);
        if (jstr(k0s, "base_config_error"))
                fprintf(out, "%-12s %s\n", "  Base cfg:", jstr(k0s, "base_config_error"));
        if (jstr(k0s, "last_address"))
                fprintf(out, "%-12s %s\n", "  Last addr:", jstr(k0s, "last_address"));
        fprintf(out, "%-12s %s\n", "  Started:", jstr(k0s, "started") ?: "-");
        fprintf(out, "%-12s %s\n", "  Uptime:", up ?: "-");
        fprintf(out, "%-12s %.0f\n", "  Restarts:", jnum(k0s, "restarts", 0));
        fprintf(out, "%-12s %s\n", "  Last exit:", jstr(k0s, "last_exit") ?: "-");
        fprintf(out, "%-12s %s%s%s\n", "  Health:", jbool(health, "ok"),
                jstr(health, "error") ? ": " : "", jstr(health, "error") ?: "");
        const cJSON *jc = cJSON_GetObjectItemCaseSensitive(k0s, "join_commands");
        if (cJSON_GetArraySize(jc) > 0) {
                fprintf(out, "%-12s k0s is stopped; these give the tailnet address:\n", "  Join:");
                const cJSON *x;
                cJSON_ArrayForEach(x, jc) if (cJSON_IsString(x))
                        fprintf(out, "%-12s %s\n", "", x->valuestring);
        }
        if (jstr(root, "hold_reason"))
                fprintf(out, "%-12s %s\n", "Held:", jstr(root, "hold_reason"));
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "upgrade_pending")))
                fprintf(out,
                        "%-12s the binary on disk is newer than the running k0s; a restart "
                        "of k0s picks it up\n",
                        "Upgrade:");
        const cJSON *w;
        cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(root, "warnings")) {
                if (cJSON_IsString(w))
                        fprintf(out, "%-12s %s\n", "Warning:", w->valuestring);
        }
        cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(root, "notices")) {
                if (cJSON_IsString(w))
                        fprintf(out, "%-12s %s\n", "Notice:", w->valuestring);
        }
        fprintf(out, "Files:\n");
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(root, "files")) {
                fprintf(out, "  %-60s %s%s%s\n", jstr(f, "path") ?: "?",
                        jstr(f, "written") ?: "not written", jstr(f, "error") ? "  ERROR: " : "",
                        jstr(f, "error") ?: "");
        }
        fprintf(out, "%-12s %s\n", "Last error:", jstr(root, "last_error") ?: "-");
}

int status_show(const char *state_dir, bool json, FILE *out) {
        _cleanup_(cJSON_Deletep) cJSON *root = NULL;
        int r = status_read(state_dir, &root);
        if (r < 0)
                return r;

        /* uptime is a property of "now", so it is computed here and not stored stale. */
        cJSON *k0s = cJSON_GetObjectItemCaseSensitive(root, "k0s");
        uint64_t started = parse_timestamp(jstr(k0s, "started"));
        uint64_t now = (uint64_t) time(NULL);
        uint64_t uptime = started && now > started ? now - started : 0;
        if (cJSON_IsObject(k0s)) {
                cJSON_DeleteItemFromObjectCaseSensitive(k0s, "uptime_sec");
                cJSON_AddNumberToObject(k0s, "uptime_sec", (double) uptime);
        }

        if (json) {
                _cleanup_free_ char *s = cJSON_Print(root);
                if (!s)
                        return -ENOMEM;
                fprintf(out, "%s\n", s);
                return 0;
        }

        char up[32];
        format_uptime(up, sizeof(up), uptime);
        print_human(root, k0s, started ? up : NULL, out);
        return 0;
}
