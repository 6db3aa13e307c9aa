/* SPDX-License-Identifier: MIT */
/*
 * The daemon's core. Owns the sd_event loop, the watchers (netlink, LocalAPI, k0s health), the
 * supervisor and the live config. Every event only marks "something changed"; one deferred
 * reconcile pass then asks reconcile() for a Plan and applies it: files through atomic-file,
 * k0s through the supervisor, STATUS= and status.json. Decisions live in reconcile.c.
 */

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "util.h"
#include "atomic-file.h"
#include "backoff.h"
#include "curl-glue.h"
#include "health.h"
#include "k0s-version.h"
#include "log.h"
#include "manager.h"
#include "netwatch.h"
#include "reconcile.h"
#include "render-containerd.h"
#include "render-k0s.h"
#include "status.h"
#include "supervisor.h"
#include "version-probe.h"
#include "tailnet.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

typedef struct FileRecord {
        char *path;
        uint64_t written_usec; /* CLOCK_REALTIME of the last write that changed it, 0 = never */
        char *error; /* last write error, NULL when the file is as planned */
} FileRecord;

struct Manager {
        sd_event *event;
        char *config_path;
        AgentConfig *config;

        Netwatch *netwatch; /* tailscale0 link + addresses (netlink socket source) */
        CurlGlue *curl; /* libcurl multi handle: LocalAPI and k0s status sockets */
        Tailnet *tailnet; /* LocalAPI watch stream + /status; NULL if not required */
        Health *health; /* k0s status-socket probe timer */
        Supervisor *supervisor; /* the k0s child: child/pidfd, settle/backoff/kill timers */
        VersionProbe *version_probe; /* `k0s version` child + pipe, while it runs */

        sd_event_source *reconcile_source; /* defer source: one reconcile per burst of events */
        sd_event_source *sigterm_source;
        sd_event_source *sigint_source;
        sd_event_source *sighup_source;
        sd_event_source *retry_source; /* retries failed file writes / version probes */
        sd_event_source *watchdog_source; /* wakes the loop every WATCHDOG_USEC/3 */

        K0sVersion k0s_version;
        bool have_version;
        char *version_error;
        Backoff retry_backoff;
        bool retry_pending;

        FileRecord *files;
        size_t n_files;
        char **registry_dirs_cleaned; /* the registry set the certs_dir cleanup last ran for */
        bool cleanup_done;

        Plan *plan; /* the last applied plan, for status updates between passes */
        uint64_t watchdog_usec;
        bool link_present; /* last seen by on_netwatch, to notice the link appearing */
        bool gate_open;
        char *address;
        char **warnings_logged;
        char *plan_error_logged;
        char *last_status;
        char *last_error;
        char *status_json;
        bool ready_sent;
        bool stopping;
        bool detach_on_exit;
        int exit_code;
};

static void manager_trigger(Manager *m);

static void file_record_clear(FileRecord *f) {
        free(f->path);
        free(f->error);
}

static FileRecord *manager_file_record(Manager *m, const char *path) {
        for (size_t i = 0; i < m->n_files; i++)
                if (streq(m->files[i].path, path))
                        return &m->files[i];
        FileRecord *n = realloc(m->files, sizeof(FileRecord) * (m->n_files + 1));
        if (!n)
                return NULL;
        m->files = n;
        char *p = strdup(path);
        if (!p)
                return NULL;
        m->files[m->n_files] = (FileRecord){ .path = p };
        return &m->files[m->n_files++];
}

static void manager_set_last_error(Manager *m, const char *fmt, ...) _printf_(2, 3);
static void manager_set_last_error(Manager *m, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (s) {
                free(m->last_error);
                m->last_error = s;
        }
}

static uint64_t now_realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* ---- retries ---------------------------------------------------------------------------- */

static int manager_probe_version(Manager *m);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        m->retry_pending = false;
        if (!m->have_version && !m->version_probe)
                (void) manager_probe_version(m);
        manager_trigger(m);
        return 0;
}

static void manager_schedule_retry(Manager *m) {
        if (m->retry_pending)
                return;
        uint64_t delay = backoff_next(&m->retry_backoff), now = 0;
        sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        int r;
        if (m->retry_source) {
                r = sd_event_source_set_time(m->retry_source, now + delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->retry_source, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(m->event, &m->retry_source, CLOCK_MONOTONIC, now + delay,
                                      USEC_PER_MSEC, on_retry, m);
        if (r < 0) {
                log_error_errno(r, "Failed to arm the retry timer: %m");
                return;
        }
        m->retry_pending = true;
        log_info("Retrying in %llu ms.", (unsigned long long) (delay / USEC_PER_MSEC));
}

/* ---- k0s version ------------------------------------------------------------------------ */

static void on_version(VersionProbe *p, int r, const char *output, void *userdata) {
        Manager *m = userdata;
        K0sVersion v;

        /* output points into the probe: parse before the probe is freed below. */
        if (r >= 0)
                r = k0s_version_parse(output, &v) < 0 ? -EBADMSG : 0;
        _cleanup_free_ char *printed = r == -EBADMSG ? strdup(output) : NULL;
        m->version_probe = version_probe_free(m->version_probe);
        free(m->version_error);
        m->version_error = NULL;
        if (r == -EBADMSG)
                m->version_error = strdup_printf("`%s version` printed '%s', not a k0s version",
                                                 m->config->k0s_binary, printed ?: "?");
        else if (r < 0)
                m->version_error = strdup_printf("`%s version` failed: %s", m->config->k0s_binary,
                                                 strerror(-r));
        if (r < 0) {
                log_error("%s", m->version_error ?: "k0s version failed");
                manager_schedule_retry(m);
        } else {
                if (!m->have_version || !streq(m->k0s_version.text, v.text))
                        log_info("k0s version %s: containerd drop-in format %s.", v.text,
                                 containerd_format_to_string(k0s_version_containerd_format(&v)));
                m->k0s_version = v;
                m->have_version = true;
        }
        manager_trigger(m);
}

static int manager_probe_version(Manager *m) {
        const AgentConfig *c = m->config;

        m->version_probe = version_probe_free(m->version_probe);
        if (!streq(c->k0s_version, "auto")) {
                int r = k0s_version_parse(c->k0s_version, &m->k0s_version);
                if (r < 0)
                        return log_error_errno(r, "Invalid k0s.version '%s'.", c->k0s_version);
                m->have_version = true;
                return 0;
        }
        int r = version_probe_start(m->event, c->k0s_binary, 10 * USEC_PER_SEC, on_version, m,
                                    &m->version_probe);
        if (r < 0) {
                free(m->version_error);
                m->version_error =
                        strdup_printf("cannot run `%s version`: %s", c->k0s_binary, strerror(-r));
                log_error_errno(r, "Failed to run '%s version': %m", c->k0s_binary);
                manager_schedule_retry(m);
        }
        return 0;
}

/* ---- applying a plan -------------------------------------------------------------------- */

static int write_planned_file(Manager *m, const PlanFile *pf) {
        FileRecord *rec = manager_file_record(m, pf->path);
        if (!rec)
                return log_oom();

        int r = atomic_file_write(pf->path, pf->contents, strlen(pf->contents), pf->mode);
        free(rec->error);
        rec->error = NULL;
        if (r < 0) {
                rec->error = strdup_printf("%s", strerror(-r));
                manager_set_last_error(m, "Failed to write %s: %s", pf->path, strerror(-r));
                const char *fields[] = { "FILE=", NULL };
                _cleanup_free_ char *ff = strdup_printf("FILE=%s", pf->path);
                fields[0] = ff;
                log_struct_errno(LOG_ERR, r, MESSAGE_ID_FILE_WRITTEN, ff ? fields : NULL,
                                 "Failed to write '%s', keeping the old file: %m", pf->path);
                return r;
        }
        if (r > 0) {
                rec->written_usec = now_realtime_usec();
                _cleanup_free_ char *ff = strdup_printf("FILE=%s", pf->path);
                const char *fields[] = { ff, NULL };
                log_struct_errno(LOG_INFO, 0, MESSAGE_ID_FILE_WRITTEN, ff ? fields : NULL,
                                 "Wrote %s.", pf->path);
        }
        return 0;
}

int manager_ensure_registry_dir(const char *dir) {
        struct stat st;
        if (stat(dir, &st) >= 0)
                return 0;
        if (errno != ENOENT)
                return -errno;
        int r = mkdir_parents(dir, 0755);
        if (r < 0)
                return r;
        _cleanup_free_ char *marker = strdup_printf("%s/%s", dir, CERTS_DIR_MARKER_FILE);
        if (!marker)
                return -ENOMEM;
        static const char text[] = "This directory was created by k0s-tsagent, which removes it "
                                   "when its registry leaves /etc/k0s-tsagent.conf.\n";
        r = atomic_file_write(marker, text, sizeof(text) - 1, 0644);
        return r < 0 ? r : 0;
}

static bool is_registry_hosts_file(const Plan *p, const char *path, char **ret_dir) {
        for (char **d = p->registry_dirs; d && *d; d++)
                if (startswith(path, *d) && path[strlen(*d)] == '/') {
                        *ret_dir = *d;
                        return true;
                }
        return false;
}

/* Remove the directories of registries that left the config, if (and only if) they carry our
 * marker, and our drop-in when no registry is left. Runs when the registry set changed. */
static void manager_cleanup_registries(Manager *m, const Plan *p) {
        const AgentConfig *c = m->config;

        if (m->cleanup_done && strv_equal(m->registry_dirs_cleaned, p->registry_dirs))
                return;

        DIR *d = opendir(c->containerd_certs_dir);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        _cleanup_free_ char *dir =
                                strdup_printf("%s/%s", c->containerd_certs_dir, de->d_name);
                        _cleanup_free_ char *marker =
                                dir ? strdup_printf("%s/%s", dir, CERTS_DIR_MARKER_FILE) : NULL;
                        _cleanup_free_ char *hosts =
                                dir ? strdup_printf("%s/hosts.toml", dir) : NULL;
                        if (!marker || !hosts)
                                break;
                        if (strv_contains(p->registry_dirs, dir) || access(marker, F_OK) < 0)
                                continue;
                        if (unlink(hosts) < 0 && errno != ENOENT)
                                log_warning_errno(errno, "Failed to remove '%s', ignoring: %m",
                                                  hosts);
                        (void) unlink(marker);
                        if (rmdir(dir) < 0)
                                log_warning_errno(errno, "Failed to remove '%s', ignoring: %m",
                                                  dir);
                        else
                                log_info("Removed %s: its registry left the config.", dir);
                }
                closedir(d);
        }

        if (c->n_registries == 0) {
                /* Only a drop-in we wrote: its first line is our marker. */
                _cleanup_free_ char *text = NULL;
                size_t len;
                if (read_file_full(c->containerd_dropin, 64 * 1024, &text, &len) >= 0 &&
                    startswith(text, RENDER_CONTAINERD_MARKER)) {
                        if (unlink(c->containerd_dropin) < 0)
                                log_warning_errno(errno, "Failed to remove '%s', ignoring: %m",
                                                  c->containerd_dropin);
                        else
                                log_info("Removed %s: no registry is configured.",
                                         c->containerd_dropin);
                }
        }

        strv_free(m->registry_dirs_cleaned);
        m->registry_dirs_cleaned = strv_copy(p->registry_dirs);
        m->cleanup_done = m->registry_dirs_cleaned != NULL;
}

/* Returns true if every file was written. k0s.yaml failing is reported in *ret_k0s_yaml_ok. */
static bool manager_apply_files(Manager *m, const Plan *p, bool *ret_k0s_yaml_ok) {
        bool ok = true;
        *ret_k0s_yaml_ok = true;

        for (size_t i = 0; i < p->n_files; i++) {
                const PlanFile *pf = &p->files[i];
                char *dir = NULL;
                int r = 0;

                if (is_registry_hosts_file(p, pf->path, &dir)) {
                        r = manager_ensure_registry_dir(dir);
                        if (r < 0)
                                log_warning_errno(r, "Failed to create '%s': %m", dir);
                }
                if (r >= 0)
                        r = write_planned_file(m, pf);
                if (r < 0) {
                        ok = false;
                        if (streq(pf->path, m->config->k0s_config))
                                *ret_k0s_yaml_ok = false;
                }
        }

        /* Forget records of files no longer planned (a registry left). */
        for (size_t i = 0; i < m->n_files;) {
                bool planned = false;
                for (size_t j = 0; j < p->n_files; j++)
                        planned = planned || streq(p->files[j].path, m->files[i].path);
                if (planned) {
                        i++;
                        continue;
                }
                file_record_clear(&m->files[i]);
                memmove(m->files + i, m->files + i + 1, sizeof(FileRecord) * (m->n_files - i - 1));
                m->n_files--;
        }
        return ok;
}

static const char *role_word(K0sRole r) {
        return k0s_role_to_string(r) ?: "?";
}

static char *manager_compose_status(Manager *m, const Plan *p) {
        Supervisor *s = m->supervisor;
        pid_t pid = supervisor_get_pid(s);
        const char *role = role_word(m->config->role);
        char *line = NULL;

        if (m->stopping)
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
                line = strdup_printf("k0s %s running (pid %d) on %s", role, (int) pid, p->address);
                break;
        case SUPERVISOR_SETTLING:
                line = strdup_printf("k0s %s running (pid %d); its inputs changed, restart "
                                     "pending (settle %llus)",
                                     role, (int) pid,
                                     (unsigned long long) (m->config->settle_usec / USEC_PER_SEC));
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
        if (line && m->health && health_get_error(m->health) && pid > 0) {
                char *l2 = strdup_printf("%s; health: %s", line, health_get_error(m->health));
                if (l2) {
                        free(line);
                        line = l2;
                }
        }
        return line;
}

static cJSON *json_strv(const char (*v)[INET6_ADDRSTRLEN], size_t n) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; a && i < n; i++)
                cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
        return a;
}

static cJSON *json_strv4(const char (*v)[INET_ADDRSTRLEN], size_t n) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; a && i < n; i++)
                cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
        return a;
}

static void json_add_str(cJSON *o, const char *k, const char *v) {
        if (v)
                cJSON_AddStringToObject(o, k, v);
        else
                cJSON_AddNullToObject(o, k);
}

static void manager_write_status(Manager *m, const Plan *p, const char *status) {
        const AgentConfig *c = m->config;
        const NetState *n = netwatch_get_state(m->netwatch);
        const TailnetStatus *t = m->tailnet ? tailnet_get_status(m->tailnet) : NULL;
        Supervisor *s = m->supervisor;
        char ts[32];

        _cleanup_(cJSON_Deletep) cJSON *root = cJSON_CreateObject();
        if (!root)
                return (void) log_oom();
        cJSON_AddStringToObject(root, "agent_version", PACKAGE_VERSION);
        cJSON_AddNumberToObject(root, "agent_pid", getpid());
        json_add_str(root, "status", status);
        cJSON_AddStringToObject(root, "role", role_word(c->role));
        cJSON_AddStringToObject(root, "gate", p && p->gate_open ? "open" : "closed");
        json_add_str(root, "waiting_for", p ? p->waiting_for : "startup");
        json_add_str(root, "address", p ? p->address : NULL);

        cJSON *i = cJSON_AddObjectToObject(root, "interface");
        if (i) {
                cJSON_AddStringToObject(i, "name", c->interface);
                cJSON_AddBoolToObject(i, "present", n && n->present);
                cJSON_AddBoolToObject(i, "up", n && n->up);
                cJSON_AddNumberToObject(i, "ifindex", n ? n->ifindex : 0);
                cJSON_AddNumberToObject(i, "mtu", n ? n->mtu : 0);
                cJSON_AddItemToObject(i, "ipv4", json_strv4(n ? n->ipv4 : NULL, n ? n->n_ipv4 : 0));
                cJSON_AddItemToObject(i, "ipv6", json_strv(n ? n->ipv6 : NULL, n ? n->n_ipv6 : 0));
                cJSON_AddNumberToObject(i, "recreated", n ? (double) n->n_recreated : 0);
                cJSON_AddNumberToObject(i, "resyncs", (double) netwatch_get_resyncs(m->netwatch));
        }

        cJSON *tn = cJSON_AddObjectToObject(root, "tailnet");
        if (tn) {
                cJSON_AddBoolToObject(tn, "required", c->require_running);
                cJSON_AddBoolToObject(tn, "connected",
                                      m->tailnet && tailnet_is_connected(m->tailnet));
                json_add_str(tn, "backend_state",
                             t ? backend_state_to_string(t->backend_state) : NULL);
                cJSON_AddBoolToObject(tn, "online", t && t->self_online);
                json_add_str(tn, "ipv4", t ? t->ipv4 : NULL);
                json_add_str(tn, "ipv6", t ? t->ipv6 : NULL);
                json_add_str(tn, "dns_name", t ? t->dns_name : NULL);
                json_add_str(tn, "version", t ? t->version : NULL);
                json_add_str(tn, "error", m->tailnet ? tailnet_get_error(m->tailnet) : NULL);
                cJSON_AddNumberToObject(tn, "reconnects",
                                        m->tailnet ? (double) tailnet_get_reconnects(m->tailnet)
                                                   : 0);
        }

        cJSON *k = cJSON_AddObjectToObject(root, "k0s");
        if (k) {
                uint64_t started = supervisor_get_started_usec(s);
                SupervisorState st = supervisor_get_state(s);
                cJSON_AddStringToObject(k, "state", supervisor_state_to_string(st) ?: "?");
                cJSON_AddNumberToObject(k, "pid", supervisor_get_pid(s));
                cJSON_AddBoolToObject(k, "adopted", supervisor_is_adopted(s));
                json_add_str(k, "started", started ? format_timestamp(ts, started) : NULL);
                cJSON_AddNumberToObject(k, "uptime_sec", 0);
                cJSON_AddNumberToObject(k, "restarts", supervisor_get_restarts(s));
                json_add_str(k, "last_exit", supervisor_get_last_exit(s));
                json_add_str(k, "version", m->have_version ? m->k0s_version.text : NULL);
                json_add_str(k, "inputs_hash", supervisor_get_hash(s));
                cJSON *argv = cJSON_AddArrayToObject(k, "argv");
                for (char **a = p && p->gate_open ? p->spec.argv : NULL; argv && a && *a; a++)
                        cJSON_AddItemToArray(argv, cJSON_CreateString(*a));
                cJSON *h = cJSON_AddObjectToObject(k, "health");
                if (h) {
                        const K0sStatus *ks = m->health ? health_get_status(m->health) : NULL;
                        const char *he = m->health ? health_get_error(m->health) : NULL;
                        if (ks || he)
                                cJSON_AddBoolToObject(h, "ok", ks != NULL);
                        else
                                cJSON_AddNullToObject(h, "ok");
                        json_add_str(h, "error", he);
                        json_add_str(h, "role", ks ? ks->role : NULL);
                        json_add_str(h, "k0s_version", ks ? ks->version : NULL);
                }
        }

        cJSON *fa = cJSON_AddArrayToObject(root, "files");
        for (size_t j = 0; fa && j < m->n_files; j++) {
                cJSON *f = cJSON_CreateObject();
                if (!f)
                        break;
                cJSON_AddStringToObject(f, "path", m->files[j].path);
                json_add_str(f, "written",
                             m->files[j].written_usec
                                     ? format_timestamp(ts, m->files[j].written_usec)
                                     : NULL);
                json_add_str(f, "error", m->files[j].error);
                cJSON_AddItemToArray(fa, f);
        }
        cJSON *w = cJSON_AddArrayToObject(root, "warnings");
        for (char **x = p ? p->warnings : NULL; w && x && *x; x++)
                cJSON_AddItemToArray(w, cJSON_CreateString(*x));
        json_add_str(root, "last_error", m->last_error);

        _cleanup_free_ char *text = cJSON_PrintUnformatted(root);
        if (!text)
                return (void) log_oom();
        if (streq_ptr(text, m->status_json))
                return;
        int r = status_write(c->state_dir, root);
        if (r < 0) {
                log_warning_errno(r, "Failed to write %s/%s, ignoring: %m", c->state_dir,
                                  STATUS_FILE_NAME);
                return;
        }
        free(m->status_json);
        m->status_json = TAKE_PTR(text);
}

static void manager_log_transitions(Manager *m, const Plan *p) {
        const char *iface = m->config->interface;
        _cleanup_free_ char *fi = strdup_printf("INTERFACE=%s", iface);
        _cleanup_free_ char *fa = strdup_printf("ADDRESS=%s", p->address ?: "");
        const char *fields[] = { fi, fa, NULL };
        bool have = fi && fa;

        if (p->gate_open && !m->gate_open)
                log_struct_errno(LOG_NOTICE, 0, MESSAGE_ID_GATE_OPEN, have ? fields : NULL,
                                 "Tailnet ready: %s has %s; k0s may run.", iface, p->address);
        else if (!p->gate_open && m->gate_open)
                log_struct_errno(LOG_WARNING, 0, MESSAGE_ID_GATE_CLOSED, have ? fields : NULL,
                                 "Tailnet not ready any more: waiting for %s. A running k0s is "
                                 "left alone.",
                                 p->waiting_for);
        if (p->gate_open && m->address && !streq(m->address, p->address))
                log_struct_errno(LOG_NOTICE, 0, MESSAGE_ID_ADDRESS, have ? fields : NULL,
                                 "Tailnet address changed: %s -> %s.", m->address, p->address);
        m->gate_open = p->gate_open;
        if (p->address) {
                free(m->address);
                m->address = strdup(p->address);
        }

        if (!strv_equal(p->warnings, m->warnings_logged)) {
                for (char **w = p->warnings; w && *w; w++)
                        if (!strv_contains(m->warnings_logged, *w))
                                log_warning("%s", *w);
                strv_free(m->warnings_logged);
                m->warnings_logged = strv_copy(p->warnings);
        }
        if (!streq_ptr(p->error, m->plan_error_logged)) {
                if (p->error) {
                        log_error("%s", p->error);
                        manager_set_last_error(m, "%s", p->error);
                }
                free(m->plan_error_logged);
                m->plan_error_logged = p->error ? strdup(p->error) : NULL;
        }
}

static void manager_update_status(Manager *m, const Plan *p) {
        _cleanup_free_ char *status = p ? manager_compose_status(m, p) : strdup("Starting");
        if (!status)
                return (void) log_oom();

        if (!streq_ptr(status, m->last_status)) {
                log_info("Status: %s", status);
                (void) sd_notifyf(false, "%sSTATUS=%s", m->ready_sent ? "" : "READY=1\n", status);
                m->ready_sent = true;
                free(m->last_status);
                m->last_status = TAKE_PTR(status);
        } else if (!m->ready_sent) {
                (void) sd_notify(false, "READY=1");
                m->ready_sent = true;
        }
        manager_write_status(m, p, m->last_status);
}

static int read_base_config(Manager *m, char **ret, size_t *ret_len, char **ret_error) {
        const char *path = m->config->k0s_base_config;
        int r = read_file_full(path, RENDER_K0S_MAX_BASE_SIZE, ret, ret_len);
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_len = 0;
                return 0;
        }
        if (r < 0)
                *ret_error = strdup_printf("%s: %s", path, strerror(-r));
        return r;
}

static int on_reconcile(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        const AgentConfig *c = m->config;
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_free_ char *base = NULL, *base_error = NULL;
        size_t base_len = 0;
        int r;

        if (k0s_role_is_controller(c->role)) {
                r = read_base_config(m, &base, &base_len, &base_error);
                if (r < 0) {
                        log_error("Cannot read the base k0s config: %s",
                                  base_error ?: strerror(-r));
                        manager_set_last_error(m, "%s", base_error ?: strerror(-r));
                        manager_schedule_retry(m);
                        return 0;
                }
        }

        NodeFacts f = {
                .net = netwatch_get_state(m->netwatch),
                .tailnet = m->tailnet ? tailnet_get_status(m->tailnet) : NULL,
                .tailnet_error = m->tailnet ? tailnet_get_error(m->tailnet) : NULL,
                .k0s_version = m->have_version ? &m->k0s_version : NULL,
                .base_config = { .content = base, .len = base_len, .error = base ? 0 : -ENOENT },
        };

        r = reconcile(c, &f, &p);
        if (r < 0) {
                log_error_errno(r, "Reconcile failed: %m");
                manager_schedule_retry(m);
                return 0;
        }
        if (!m->have_version && m->version_error && p->waiting_for &&
            startswith(p->waiting_for, "the k0s version")) {
                free(p->status);
                p->status = strdup_printf("Waiting for the k0s version: %s", m->version_error);
        }

        manager_log_transitions(m, p);

        bool k0s_yaml_ok = true;
        bool files_ok = manager_apply_files(m, p, &k0s_yaml_ok);
        if (m->have_version)
                manager_cleanup_registries(m, p);
        if (files_ok && !p->error) {
                backoff_reset(&m->retry_backoff);
        } else
                manager_schedule_retry(m);

        if (!m->stopping) {
                if (p->k0s == PLAN_K0S_RUN && k0s_yaml_ok)
                        r = supervisor_set_desired(m->supervisor, &p->spec);
                else
                        r = supervisor_set_desired(m->supervisor, NULL);
                if (r < 0) {
                        log_error_errno(r, "Failed to start k0s: %m");
                        manager_set_last_error(m, "Failed to start k0s: %s", strerror(-r));
                }
        }

        if (m->health) {
                SupervisorState st = supervisor_get_state(m->supervisor);
                health_set_enabled(m->health,
                                   !m->stopping && c->health_interval_usec > 0 &&
                                           supervisor_get_pid(m->supervisor) > 0 &&
                                           (st == SUPERVISOR_RUNNING || st == SUPERVISOR_SETTLING));
        }

        manager_update_status(m, p);
        plan_free(m->plan);
        m->plan = TAKE_PTR(p);
        return 0;
}

static void manager_trigger(Manager *m) {
        if (m->reconcile_source)
                (void) sd_event_source_set_enabled(m->reconcile_source, SD_EVENT_ONESHOT);
}

/* ---- event handlers --------------------------------------------------------------------- */

static void on_netwatch(Netwatch *nw, void *userdata) {
        Manager *m = userdata;
        const NetState *n = netwatch_get_state(nw);

        /* The link appearing means tailscaled (re)started: its LocalAPI is up already, so do not
         * let the reconnect backoff delay the first k0s start after a power cut. */
        if (n->present && !m->link_present)
                tailnet_kick(m->tailnet);
        m->link_present = n->present;
        manager_trigger(m);
}

static void on_tailnet(Tailnet *t, void *userdata) {
        manager_trigger(userdata);
}

static void on_health(Health *h, void *userdata) {
        manager_trigger(userdata);
}

static void on_supervisor(Supervisor *s, void *userdata) {
        Manager *m = userdata;

        if (m->stopping && supervisor_get_pid(s) == 0) {
                log_info("k0s is stopped; exiting.");
                (void) sd_event_exit(m->event, m->exit_code);
                return;
        }
        manager_trigger(m);
}

/* systemd sends SIGTERM for both `stop` and `restart`. A restart (package upgrade, config
 * rollout, watchdog) must not stop k0s: the next agent adopts it. So ask systemd which job is
 * running on our unit. Not under systemd, or when unsure, k0s is stopped. */
static bool unit_is_restarting(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *unit_path = NULL, *job_path = NULL, *job_type = NULL;
        _cleanup_free_ char *unit = NULL, *job = NULL;
        uint32_t job_id = 0;
        bool restarting = false;
        int r;

        if (!getenv("INVOCATION_ID"))
                return false;

        /* The private socket works without dbus-daemon (minimal systems, early boot). */
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, "unix:path=/run/systemd/private");
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                bus = sd_bus_flush_close_unref(bus);
                r = sd_bus_open_system(&bus);
        }
        if (r < 0) {
                log_debug_errno(r, "Cannot reach systemd to see whether this is a restart: %m");
                return false;
        }
        (void) sd_bus_set_method_call_timeout(bus, 2 * USEC_PER_SEC);

        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "GetUnitByPID", &error, &reply,
                               "u", (uint32_t) getpid());
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &unit_path);
        unit = r >= 0 ? strdup(unit_path) : NULL;
        reply = sd_bus_message_unref(reply);
        if (r < 0 || !unit)
                goto finish;

        r = sd_bus_get_property(bus, "org.freedesktop.systemd1", unit,
                                "org.freedesktop.systemd1.Unit", "Job", &error, &reply, "(uo)");
        if (r >= 0)
                r = sd_bus_message_read(reply, "(uo)", &job_id, &job_path);
        job = r >= 0 && job_id > 0 ? strdup(job_path) : NULL;
        reply = sd_bus_message_unref(reply);
        if (!job)
                goto finish;

        r = sd_bus_get_property(bus, "org.freedesktop.systemd1", job,
                                "org.freedesktop.systemd1.Job", "JobType", &error, &reply, "s");
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &job_type);
        if (r >= 0) {
                log_debug("systemd job on our unit: %s", job_type);
                restarting = streq(job_type, "restart") || streq(job_type, "try-restart") ||
                        streq(job_type, "reload-or-restart") ||
                        streq(job_type, "reload-or-try-restart");
        }
        reply = sd_bus_message_unref(reply);
finish:
        if (r < 0)
                log_debug("Cannot tell stop from restart (%s); stopping k0s.",
                          error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return restarting;
}

static int on_shutdown_signal(sd_event_source *s, const struct signalfd_siginfo *si,
                              void *userdata) {
        Manager *m = userdata;

        if (m->stopping) {
                /* Never a second SIGTERM to k0s: it would skip its cleanup. */
                log_info("Already stopping; waiting for k0s (stop timeout %llus).",
                         (unsigned long long) (m->config->stop_timeout_usec / USEC_PER_SEC));
                return 0;
        }
        m->stopping = true;
        (void) sd_notify(false, "STOPPING=1");

        pid_t pid = supervisor_get_pid(m->supervisor);
        if (pid > 0 && unit_is_restarting()) {
                log_notice("Agent restart: leaving k0s (pid %d) running for the next agent.",
                           (int) pid);
                supervisor_detach(m->supervisor);
                return sd_event_exit(m->event, 0);
        }
        if (pid <= 0) {
                (void) supervisor_set_desired(m->supervisor, NULL);
                return sd_event_exit(m->event, 0);
        }
        log_notice("Got %s: stopping k0s (pid %d) with one SIGTERM, SIGKILL after %llus.",
                   strsignal((int) si->ssi_signo), (int) pid,
                   (unsigned long long) (m->config->stop_timeout_usec / USEC_PER_SEC));
        if (m->health)
                health_set_enabled(m->health, false);
        int r = supervisor_stop(m->supervisor);
        if (r < 0) {
                log_error_errno(r, "Failed to stop k0s: %m");
                m->exit_code = 1;
                return sd_event_exit(m->event, 1);
        }
        if (r == 0 || supervisor_get_pid(m->supervisor) == 0)
                return sd_event_exit(m->event, 0);
        manager_update_status(m, m->plan);
        return 0;
}

static void manager_apply_config(Manager *m, const AgentConfig *old) {
        const AgentConfig *c = m->config;
        int r;

        if (!streq(old->interface, c->interface)) {
                r = netwatch_set_ifname(m->netwatch, c->interface);
                if (r < 0)
                        log_error_errno(r, "Failed to watch '%s': %m", c->interface);
        }

        if (c->require_running && !m->tailnet) {
                r = tailnet_new(m->curl, c->tailscale_socket, on_tailnet, m, &m->tailnet);
                if (r >= 0)
                        r = tailnet_attach(m->tailnet, m->event);
                if (r < 0)
                        log_error_errno(r, "Failed to start the LocalAPI client: %m");
        } else if (!c->require_running && m->tailnet)
                m->tailnet = tailnet_free(m->tailnet);
        else if (m->tailnet && !streq(old->tailscale_socket, c->tailscale_socket))
                (void) tailnet_set_socket(m->tailnet, c->tailscale_socket);

        if (m->tailnet) {
                bool multi = false;
                for (size_t i = 0; i < c->n_registries; i++)
                        multi = multi || c->registries[i].n_endpoints > 1;
                tailnet_set_refresh(m->tailnet, multi ? c->peer_refresh_usec : 0);
        }

        health_configure(m->health, c->k0s_status_socket, c->health_interval_usec,
                         c->health_timeout_usec);

        SupervisorTiming t;
        supervisor_timing_from_config(c, &t);
        supervisor_set_timing(m->supervisor, &t);
        if (!streq(old->state_dir, c->state_dir)) {
                r = supervisor_set_state_dir(m->supervisor, c->state_dir);
                if (r < 0)
                        log_error_errno(r, "Failed to use state_dir '%s': %m", c->state_dir);
                free(m->status_json);
                m->status_json = NULL;
        }
        if (!streq(old->k0s_binary, c->k0s_binary) || !streq(old->k0s_version, c->k0s_version)) {
                m->have_version = false;
                (void) manager_probe_version(m);
        }
        m->cleanup_done = false;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        _cleanup_(config_freep) AgentConfig *n = NULL;
        _cleanup_free_ char *error = NULL;

        (void) sd_notify(false, "RELOADING=1");
        log_info("Reloading %s.", m->config_path);
        int r = config_load(m->config_path, &n, &error);
        if (r < 0) {
                _cleanup_free_ char *ff = strdup_printf("CONFIG_FILE=%s", m->config_path);
                const char *fields[] = { ff, NULL };
                log_struct_errno(LOG_ERR, 0, MESSAGE_ID_CONFIG_ERROR, ff ? fields : NULL,
                                 "%s; keeping the running configuration.",
                                 error ?: "Invalid configuration");
                manager_set_last_error(m, "reload failed: %s", error ?: strerror(-r));
        } else {
                AgentConfig *old = m->config;
                m->config = TAKE_PTR(n);
                manager_apply_config(m, old);
                config_free(old);
                free(m->last_error);
                m->last_error = NULL;
                log_struct_errno(LOG_INFO, 0, MESSAGE_ID_RELOADED, NULL, "Reloaded %s.",
                                 m->config_path);
        }
        (void) sd_notify(false, "READY=1");
        manager_trigger(m);
        if (r < 0) {
                free(m->status_json);
                m->status_json = NULL;
                manager_update_status(m, m->plan);
        }
        return 0;
}

static int on_watchdog_kick(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        /* Waking the loop is enough: sd-event sends WATCHDOG=1 once a quarter of the period has
         * passed. This keeps pings at a third of the period, never later. */
        return sd_event_source_set_time_relative(s, m->watchdog_usec / 3);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

int manager_new(const char *config_path, AgentConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(Manager));
        int r;

        if (!m) {
                config_free(config);
                return -ENOMEM;
        }
        m->config = config;
        m->config_path = strdup(config_path);
        if (!m->config_path)
                return -ENOMEM;
        backoff_init(&m->retry_backoff, USEC_PER_SEC, 60 * USEC_PER_SEC);

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

int manager_start(Manager *m) {
        const AgentConfig *c = m->config;
        int r;

        r = sd_event_add_signal(m->event, &m->sigterm_source, SIGTERM, on_shutdown_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGTERM: %m");
        r = sd_event_add_signal(m->event, &m->sigint_source, SIGINT, on_shutdown_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGINT: %m");
        r = sd_event_add_signal(m->event, &m->sighup_source, SIGHUP, on_sighup, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGHUP: %m");

        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog, ignoring: %m");
        else if (r > 0) {
                uint64_t wd = 0;
                if (sd_event_get_watchdog(m->event) > 0 && sd_watchdog_enabled(false, &wd) > 0 &&
                    wd > 0) {
                        m->watchdog_usec = wd;
                        r = sd_event_add_time_relative(m->event, &m->watchdog_source,
                                                       CLOCK_MONOTONIC, wd / 3, USEC_PER_MSEC,
                                                       on_watchdog_kick, m);
                        if (r >= 0)
                                r = sd_event_source_set_enabled(m->watchdog_source, SD_EVENT_ON);
                        if (r < 0)
                                log_warning_errno(r, "Failed to add the watchdog timer: %m");
                        else
                                log_info("Watchdog every %llu ms.",
                                         (unsigned long long) (wd / USEC_PER_MSEC));
                }
        }

        r = sd_event_add_defer(m->event, &m->reconcile_source, on_reconcile, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the reconcile source: %m");
        (void) sd_event_source_set_enabled(m->reconcile_source, SD_EVENT_OFF);
        /* After the watchers' sources, so one pass sees everything that arrived together. */
        (void) sd_event_source_set_priority(m->reconcile_source, SD_EVENT_PRIORITY_IDLE);

        r = netwatch_new(c->interface, on_netwatch, m, &m->netwatch);
        if (r >= 0)
                r = netwatch_attach(m->netwatch, m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to watch interface '%s' over netlink: %m",
                                       c->interface);

        r = curl_glue_new(m->event, &m->curl);
        if (r < 0)
                return log_error_errno(r, "Failed to set up libcurl: %m");
        if (c->require_running) {
                r = tailnet_new(m->curl, c->tailscale_socket, on_tailnet, m, &m->tailnet);
                if (r >= 0)
                        r = tailnet_attach(m->tailnet, m->event);
                if (r < 0)
                        return log_error_errno(r, "Failed to start the LocalAPI client: %m");
        }

        r = health_new(m->curl, c->k0s_status_socket, on_health, m, &m->health);
        if (r >= 0)
                r = health_attach(m->health, m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the k0s health probe: %m");

        SupervisorTiming t;
        supervisor_timing_from_config(c, &t);
        r = supervisor_new(c->state_dir, &t, on_supervisor, m, &m->supervisor);
        if (r >= 0)
                r = supervisor_attach(m->supervisor, m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the k0s supervisor: %m");

        r = mkdir_parents(c->state_dir, 0755);
        if (r < 0)
                log_warning_errno(r, "Failed to create state_dir '%s': %m", c->state_dir);

        r = supervisor_adopt(m->supervisor, c->k0s_binary);
        if (r < 0)
                log_warning_errno(r, "Failed to look for a running k0s, ignoring: %m");

        /* Apply derived settings (health, peer refresh) through the same path as a reload. */
        manager_apply_config(m, c);
        (void) manager_probe_version(m);
        manager_trigger(m);
        log_info("k0s-tsagent %s started: role %s, interface %s.", PACKAGE_VERSION,
                 role_word(c->role), c->interface);
        return 0;
}

int manager_run(Manager *m) {
        int r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), 1;
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->version_probe = version_probe_free(m->version_probe);
        m->health = health_free(m->health);
        m->tailnet = tailnet_free(m->tailnet);
        m->curl = curl_glue_free(m->curl);
        m->netwatch = netwatch_free(m->netwatch);
        m->supervisor = supervisor_free(m->supervisor);
        sd_event_source_disable_unref(m->reconcile_source);
        sd_event_source_disable_unref(m->sigterm_source);
        sd_event_source_disable_unref(m->sigint_source);
        sd_event_source_disable_unref(m->sighup_source);
        sd_event_source_disable_unref(m->retry_source);
        sd_event_source_disable_unref(m->watchdog_source);
        sd_event_unref(m->event);
        for (size_t i = 0; i < m->n_files; i++)
                file_record_clear(&m->files[i]);
        free(m->files);
        strv_free(m->registry_dirs_cleaned);
        strv_free(m->warnings_logged);
        free(m->plan_error_logged);
        free(m->version_error);
        free(m->address);
        free(m->last_status);
        free(m->last_error);
        free(m->status_json);
        free(m->config_path);
        config_free(m->config);
        m->plan = plan_free(m->plan);
        free(m);
        return NULL;
}
