/* SPDX-License-Identifier: MIT */
/*
 * The daemon's core. Owns the sd_event loop, the watchers (netlink, LocalAPI, k0s health), the
 * supervisor and the live config. Every event only marks "something changed"; one deferred
 * reconcile pass then asks reconcile() for a Plan and applies it: files through atomic-file,
 * k0s through the supervisor, STATUS= and status.json. Decisions live in reconcile.c.
 */

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "json-util.h"
#include "util.h"
#include "atomic-file.h"
#include "backoff.h"
#include "binary-watch.h"
#include "clock.h"
#include "curl-glue.h"
#include "event-util.h"
#include "files.h"
#include "health.h"
#include "k0s-version.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "netwatch.h"
#include "reconcile.h"
#include "render-containerd.h"
#include "render-k0s.h"
#include "status.h"
#include "persist.h"
#include "supervisor.h"
#include "version-probe.h"
#include "tailnet.h"
#include "unit-job.h"

/* STATUS= is one line for `systemctl status`; longer text is cut (status.json has the rest). */
#define STATUS_LINE_MAX 1024
/* systemd answers in milliseconds; a manager that hangs must not hold up the stop for long. */
#define UNIT_JOB_TIMEOUT_USEC (3 * USEC_PER_SEC)

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
        BinaryWatch *binary_watch; /* inotify on k0s.binary's directory: a replaced binary */
        ClockWatch *clock; /* clock-step timerfd, timesyncd inotify, clock.timeout timer */
        Metrics *metrics; /* textfile writer: its trailing-write timer, dir inotify; NULL = off */
        MetricsTracker metrics_tracker; /* counters derived from what the manager observes */

        sd_event_source *reconcile_source; /* defer source: one reconcile per burst of events */
        sd_event_source *sigterm_source;
        sd_event_source *sigint_source;
        sd_event_source *sighup_source;
        sd_event_source *retry_source; /* retries failed file writes / version probes */
        sd_event_source *watchdog_source; /* wakes the loop every WATCHDOG_USEC/3 */

        K0sVersion k0s_version;
        bool have_version;
        BinaryId binary_id; /* of the binary k0s_version was probed from (invalid: not probed) */
        char *version_error;
        Backoff retry_backoff;
        bool retry_pending;

        Files *files; /* records of the planned files, registry-dir cleanup */
        UnitJobQuery *unit_job; /* "is our stop a restart?" in flight, after SIGTERM */

        Plan *plan; /* the last applied plan, for status updates between passes */
        uint64_t watchdog_usec;
        bool link_present; /* last seen by on_netwatch, to notice the link appearing */
        bool gate_open;
        char *address;
        char **warnings_logged;
        char **errors_logged;
        char **notices_logged;
        char **holds_logged;
        char *last_address; /* persist_dir/last-address: the address a controller's k0s last
                             * ran with, NULL when none is recorded */
        K0sVersion running_version; /* of the k0s that runs now, when have_running_version */
        bool have_running_version;
        char *running_hash; /* inputs hash the running version was noted for */
        char *base_config_error; /* "PATH: reason" while the base k0s.yaml cannot be read */
        char *last_status;
        char *last_error;
        char *status_json;
        bool ready_sent;
        bool stopping;
        bool detach_on_exit;
        int exit_code;
};

static void manager_trigger(Manager *m);
static void manager_metrics_file(Manager *m, const char *path, int r);
static void manager_metrics_k0s(Manager *m);
static void manager_metrics_update(Manager *m, const Plan *p);
static void manager_reload_metrics(Manager *m, const AgentConfig *old);
static void manager_reload_clock(Manager *m, const AgentConfig *old);

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
        uint64_t delay = backoff_next(&m->retry_backoff);
        int r = event_timer_arm(m->event, &m->retry_source, delay, USEC_PER_MSEC, false, on_retry,
                                m, "retry");
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
        if (r >= 0)
                m->binary_id = *version_probe_get_binary_id(p);
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

static const char *role_word(K0sRole r) {
        return k0s_role_to_string(r) ?: "?";
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
        else if (!p->gate_open && m->gate_open && !p->hold)
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

        log_new_lines(LOG_WARNING, &m->warnings_logged, p->warnings);
        log_new_lines(LOG_NOTICE, &m->notices_logged, p->notices);
        char *holds[] = { p->hold_reason, NULL };
        log_new_lines(LOG_WARNING, &m->holds_logged, p->hold_reason ? holds : NULL);
        char *errors[] = { p->error, NULL };
        if (p->error && !strv_contains(m->errors_logged, p->error))
                manager_set_last_error(m, "%s", p->error);
        log_new_lines(LOG_ERR, &m->errors_logged, p->error ? errors : NULL);
}

static StatusSources manager_status_sources(Manager *m, const Plan *p) {
        const AgentConfig *c = m->config;
        return (StatusSources){
                .config = c,
                .plan = p,
                .status = m->last_status,
                .netwatch = m->netwatch,
                .tailnet = m->tailnet,
                .supervisor = m->supervisor,
                .health = m->health,
                .files = m->files,
                .k0s_version = m->have_version ? &m->k0s_version : NULL,
                .last_error = m->last_error,
                .base_config_error = m->base_config_error,
                .clock = clock_fact_to_string(clock_watch_get_fact(m->clock)),
                .last_address = k0s_role_is_controller(c->role) ? m->last_address : NULL,
                .k0s_running_version = m->have_running_version ? &m->running_version : NULL,
        };
}

static void manager_write_status(Manager *m, const Plan *p) {
        const AgentConfig *c = m->config;
        StatusSources src = manager_status_sources(m, p);
        _cleanup_(cJSON_Deletep) cJSON *root = status_build(&src);
        _cleanup_free_ char *text = root ? cJSON_PrintUnformatted(root) : NULL;
        if (!text)
                return (void) log_oom();
        if (streq_ptr(text, m->status_json))
                return;
        int r = status_write(c->state_dir, root);
        metrics_tracker_file(&m->metrics_tracker, METRICS_FILE_STATUS, r < 0 ? r : 1);
        if (r < 0)
                return (void) log_warning_errno(r, "Failed to write %s/%s, ignoring: %m",
                                                c->state_dir, STATUS_FILE_NAME);
        free(m->status_json);
        m->status_json = TAKE_PTR(text);
}

/* The STATUS= line: composed from the plan and the modules, then cleaned, because parts of it
 * come from outside (LocalAPI errors, k0s exit texts, file errors) and a newline in it would let
 * them add assignments (MAINPID=, WATCHDOG=) to what systemd reads from us. */
static char *manager_status_line(Manager *m, const Plan *p) {
        StatusSources src = manager_status_sources(m, p);
        _cleanup_free_ char *line = p ? status_line(&src, m->stopping) : strdup("Starting");
        if (line && m->base_config_error && !strstr(line, m->config->k0s_base_config)) {
                char *l2 = strdup_printf("%s; cannot use %s", line, m->base_config_error);
                free(line);
                line = l2;
        }
        return line ? str_sanitize(line, STATUS_LINE_MAX) : NULL;
}

static void manager_update_status(Manager *m, const Plan *p) {
        _cleanup_free_ char *status = manager_status_line(m, p);
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
        manager_write_status(m, p);
}

/* The base k0s.yaml as a fact: its content or its read error (a directory, a FIFO, too big).
 * A read error is the plan's business (k0s waits with that reason), never a reason to stop the
 * pass: READY=1 and STATUS= must still go out. */
static FileFact manager_read_base_config(Manager *m, char **ret_content) {
        const char *path = m->config->k0s_base_config;
        size_t len = 0;

        *ret_content = NULL;
        int r = k0s_role_is_controller(m->config->role)
                ? read_file_full(path, RENDER_K0S_MAX_BASE_SIZE, ret_content, &len)
                : -ENOENT;
        _cleanup_free_ char *error =
                r < 0 && r != -ENOENT ? strdup_printf("%s: %s", path, strerror(-r)) : NULL;
        if (!streq_ptr(error, m->base_config_error)) {
                if (error) {
                        log_error("Cannot read the base k0s config %s: %s", path, strerror(-r));
                        manager_set_last_error(m, "%s", error);
                }
                free(m->base_config_error);
                free(m->last_address);
                free(m->running_hash);
                m->base_config_error = TAKE_PTR(error);
        }
        if (m->base_config_error)
                manager_schedule_retry(m); /* nothing else tells us when it is fixed */
        if (r < 0)
                return (FileFact){ .error = r };
        return (FileFact){ .content = *ret_content, .len = len };
}

static void manager_load_last_address(Manager *m) {
        _cleanup_free_ char *a = NULL;
        int r = persist_read_last_address(m->config->persist_dir, &a);
        if (r < 0)
                log_warning_errno(r, "Cannot read %s/%s, ignoring: %m", m->config->persist_dir,
                                  PERSIST_LAST_ADDRESS);
        else if (!streq_ptr(a, m->last_address)) {
                free(m->last_address);
                m->last_address = TAKE_PTR(a);
        }
}

/* After the supervisor acted on the plan: the version of the k0s that now runs (the version
 * fact at its start; an adopted k0s's is unknown until the probe of its binary tells), and on
 * controllers the address it runs with, persisted for the next boot. */
static void manager_note_running(Manager *m, const Plan *p) {
        const char *hash = supervisor_get_hash(m->supervisor);
        bool runs_plan = hash && p->k0s == PLAN_K0S_RUN && streq_ptr(hash, p->spec.hash);

        if (supervisor_get_pid(m->supervisor) <= 0) {
                m->have_running_version = false;
                free(m->running_hash);
                m->running_hash = NULL;
        } else if (runs_plan && !supervisor_is_adopted(m->supervisor) && m->have_version &&
                   !streq_ptr(m->running_hash, hash)) {
                m->running_version = m->k0s_version;
                m->have_running_version = true;
                free(m->running_hash);
                m->running_hash = strdup(hash);
        }

        if (!runs_plan || !p->address || !k0s_role_is_controller(m->config->role) ||
            streq_ptr(m->last_address, p->address))
                return;
        int r = persist_write_last_address(m->config->persist_dir, p->address);
        if (r < 0)
                return (void) log_warning_errno(r, "Failed to record %s in %s/%s: %m", p->address,
                                                m->config->persist_dir, PERSIST_LAST_ADDRESS);
        log_info("k0s %s runs on %s: recorded in %s/%s.", k0s_role_to_string(m->config->role),
                 p->address, m->config->persist_dir, PERSIST_LAST_ADDRESS);
        free(m->last_address);
        m->last_address = strdup(p->address);
}

static int on_reconcile(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        const AgentConfig *c = m->config;
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_free_ char *base = NULL;
        int r;

        struct stat token_st;
        NodeFacts f = {
                .net = netwatch_get_state(m->netwatch),
                .tailnet = m->tailnet ? tailnet_get_status(m->tailnet) : NULL,
                .tailnet_error = m->tailnet ? tailnet_get_error(m->tailnet) : NULL,
                .k0s_version = m->have_version ? &m->k0s_version : NULL,
                .k0s_running_version = m->have_running_version ? &m->running_version : NULL,
                .k0s_binary_id = m->binary_id,
                .base_config = manager_read_base_config(m, &base),
                .token_file_error = stat(c->k0s_token_file, &token_st) < 0 ? -errno : 0,
                .last_address = k0s_role_is_controller(c->role) ? m->last_address : NULL,
                .now_realtime_usec = now_usec(CLOCK_REALTIME),
                .clock = clock_watch_get_fact(m->clock),
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
        metrics_tracker_gate(&m->metrics_tracker, p->gate_open, now_usec(CLOCK_MONOTONIC));

        bool k0s_yaml_ok = true;
        bool files_ok = files_apply(m->files, c, p, &k0s_yaml_ok) == 0;
        for (size_t i = 0; i < files_get_count(m->files); i++)
                manager_metrics_file(m, files_get(m->files, i)->path,
                                     files_get(m->files, i)->result);
        if (!files_ok && files_get_error(m->files))
                manager_set_last_error(m, "%s", files_get_error(m->files));
        if (m->have_version)
                files_cleanup(m->files, c, p);
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
        manager_note_running(m, p);

        if (m->health) {
                SupervisorState st = supervisor_get_state(m->supervisor);
                health_set_enabled(m->health,
                                   !m->stopping && c->health_interval_usec > 0 &&
                                           supervisor_get_pid(m->supervisor) > 0 &&
                                           (st == SUPERVISOR_RUNNING || st == SUPERVISOR_SETTLING));
        }

        manager_update_status(m, p);
        manager_metrics_k0s(m);
        manager_metrics_update(m, p);
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

/* The binary was replaced (autopilot renames a new one over it and stops k0s; an operator
 * copies one): ask it its version again, so the drop-in written before the next start matches
 * the binary that is about to run (issue 7). The old version stays in force until the answer. */
static void manager_reprobe(Manager *m, const char *why) {
        if (m->version_probe || !streq(m->config->k0s_version, "auto"))
                return;
        log_info("%s: asking it for its version again.", why);
        (void) manager_probe_version(m);
}

static void on_binary_changed(BinaryWatch *w, void *userdata) {
        Manager *m = userdata;
        manager_reprobe(m, m->config->k0s_binary);
}

static int manager_watch_binary(Manager *m) {
        m->binary_watch = binary_watch_free(m->binary_watch);
        int r = binary_watch_new(m->config->k0s_binary, on_binary_changed, m, &m->binary_watch);
        if (r >= 0)
                r = binary_watch_attach(m->binary_watch, m->event);
        if (r < 0) {
                m->binary_watch = binary_watch_free(m->binary_watch);
                /* Not fatal: the supervisor still compares the binary before every start. */
                return log_warning_errno(r, "Failed to watch '%s' for replacement, ignoring: %m",
                                         m->config->k0s_binary);
        }
        return 0;
}

static void on_supervisor(Supervisor *s, void *userdata) {
        Manager *m = userdata;

        if (supervisor_binary_changed(s))
                manager_reprobe(m, "The k0s binary changed since its version was asked");

        manager_metrics_k0s(m);
        manager_metrics_update(m, m->plan);

        if (m->stopping && supervisor_get_pid(s) == 0) {
                log_info("k0s is stopped; exiting.");
                (void) sd_event_exit(m->event, m->exit_code);
                return;
        }
        manager_trigger(m);
}

/* Stop k0s for good: one SIGTERM, SIGKILL after stop_timeout; the loop exits when it is gone. */
static void manager_stop_k0s(Manager *m, const char *why) {
        pid_t pid = supervisor_get_pid(m->supervisor);

        if (pid <= 0) {
                (void) supervisor_set_desired(m->supervisor, NULL);
                return (void) sd_event_exit(m->event, m->exit_code);
        }
        log_notice("%s: stopping k0s (pid %d) with one SIGTERM, SIGKILL after %llus.", why,
                   (int) pid, (unsigned long long) (m->config->stop_timeout_usec / USEC_PER_SEC));
        if (m->health)
                health_set_enabled(m->health, false);
        int r = supervisor_stop(m->supervisor);
        if (r < 0) {
                log_error_errno(r, "Failed to stop k0s: %m");
                m->exit_code = 1;
                return (void) sd_event_exit(m->event, 1);
        }
        if (r == 0 || supervisor_get_pid(m->supervisor) == 0)
                return (void) sd_event_exit(m->event, 0);
        manager_update_status(m, m->plan);
}

static void on_unit_job(UnitJobQuery *q, int r, bool restarting, void *userdata) {
        Manager *m = userdata;
        pid_t pid = supervisor_get_pid(m->supervisor);

        /* q is freed with the manager, not here: we are inside its bus callback. */
        if (r < 0)
                log_info_errno(r, "Cannot tell stop from restart (%m); stopping k0s.");
        if (restarting && pid > 0) {
                log_notice("Agent restart: leaving k0s (pid %d) running for the next agent.",
                           (int) pid);
                supervisor_detach(m->supervisor);
                return (void) sd_event_exit(m->event, 0);
        }
        manager_stop_k0s(m, "Stop of the unit");
}

/* systemd sends SIGTERM for both `stop` and `restart`. A restart (package upgrade, config
 * rollout, watchdog) must not stop k0s: the next agent adopts it. So ask systemd which job runs
 * on our unit, asynchronously: meanwhile child exits and watchdog pings go on. Not under
 * systemd, or when unsure, k0s is stopped. */
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

        if (supervisor_get_pid(m->supervisor) > 0 && getenv("INVOCATION_ID")) {
                int r = unit_job_query(m->event, NULL, (uint32_t) getpid(), UNIT_JOB_TIMEOUT_USEC,
                                       on_unit_job, m, &m->unit_job);
                if (r >= 0)
                        return 0;
                log_info_errno(r,
                               "Cannot ask systemd whether this is a restart (%m); stopping "
                               "k0s.");
        }
        manager_stop_k0s(m, strsignal((int) si->ssi_signo));
        return 0;
}

/* (tailnet helper) Peers are asked of tailscaled only when some endpoint names one: a peer:
 * endpoint, or (until the config parses those) a url: whose host is a tailnet IPv4. */
/* Peers are asked for only when some registry names a peer: endpoint (issue 11): on a big
 * tailnet every peer change otherwise costs a full /status. */
static bool config_needs_peers(const AgentConfig *c) {
        for (size_t i = 0; i < c->n_registries; i++)
                for (size_t j = 0; j < c->registries[i].n_endpoints; j++)
                        if (c->registries[i].endpoints[j].peer)
                                return true;
        return false;
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
                tailnet_set_need_peers(m->tailnet, config_needs_peers(c));
        }

        health_configure(m->health, c->k0s_status_socket, c->health_interval_usec,
                         c->health_timeout_usec);
        manager_reload_metrics(m, old);
        manager_reload_clock(m, old);

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
                m->binary_id = (BinaryId){};
                if (!streq(old->k0s_binary, c->k0s_binary))
                        (void) manager_watch_binary(m);
                (void) manager_probe_version(m);
        }
        files_invalidate_cleanup(m->files);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        _cleanup_(config_freep) AgentConfig *n = NULL;
        _cleanup_free_ char *error = NULL;

        (void) sd_notify(false, "RELOADING=1");
        log_info("Reloading %s.", m->config_path);
        manager_load_last_address(m); /* `accept-address` wrote it and sent SIGHUP */
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

/* sd-event alone pings when its watchdog timer fires, between 1/2 and 3/4 of the period
 * (sd_event_set_watchdog(): arm_watchdog() in sd-event.c), and on any wakeup after 1/4. A gap of
 * 750-753 ms of 1 s was measured with that alone (netns-watchdog, 3 runs): beyond
 * systemd.service(5)'s "half the period". Waking the loop every third of the period is the
 * smallest addition that keeps every gap under half: 337-380 ms measured, 484 ms at most while
 * the LocalAPI hangs. So both stay: sd-event's own pings and this one timer. */
static int on_watchdog_kick(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r = event_timer_arm(m->event, &m->watchdog_source, m->watchdog_usec / 3, USEC_PER_MSEC,
                                false, on_watchdog_kick, m, "watchdog-kick");
        if (r < 0)
                log_warning_errno(r, "Failed to re-arm the watchdog timer: %m");
        return 0;
}

static void manager_setup_watchdog(Manager *m) {
        uint64_t wd = 0;
        int r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                return (void) log_warning_errno(r, "Failed to enable the watchdog, ignoring: %m");
        if (r == 0 || sd_watchdog_enabled(false, &wd) <= 0 || wd == 0)
                return;
        m->watchdog_usec = wd;
        r = event_timer_arm(m->event, &m->watchdog_source, wd / 3, USEC_PER_MSEC, false,
                            on_watchdog_kick, m, "watchdog-kick");
        if (r < 0)
                return (void) log_warning_errno(r, "Failed to add the watchdog timer: %m");
        log_info("Watchdog every %llu ms.", (unsigned long long) (wd / USEC_PER_MSEC));
}

/* ---- lifecycle -------------------------------------------------------------------------- */

/* ---- clock wait and metrics textfile (features) ------------------------------------------ */

static void on_clock(ClockWatch *c, void *userdata) {
        manager_trigger(userdata);
}

static int manager_start_clock_and_metrics(Manager *m) {
        const AgentConfig *c = m->config;
        int r;

        metrics_tracker_init(&m->metrics_tracker);
        r = clock_watch_new(c, on_clock, m, &m->clock);
        if (r >= 0)
                r = clock_watch_attach(m->clock, m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the clock: %m");
        r = metrics_new(c->metrics_textfile, &m->metrics);
        if (r >= 0)
                r = metrics_attach(m->metrics, m->event);
        if (r < 0)
                log_warning_errno(r, "Metrics textfile %s disabled: %m", c->metrics_textfile);
        return 0;
}

/* clock.wait_sync or clock.timeout changed on reload: a new watch decides again (a running k0s
 * is never held for the clock, reconcile holds only a first start). */
static void manager_reload_clock(Manager *m, const AgentConfig *old) {
        const AgentConfig *c = m->config;
        if (old == c || !m->clock ||
            (old->clock_wait_sync == c->clock_wait_sync &&
             old->clock_timeout_usec == c->clock_timeout_usec))
                return;
        m->clock = clock_watch_free(m->clock);
        int r = clock_watch_new(c, on_clock, m, &m->clock);
        if (r >= 0)
                r = clock_watch_attach(m->clock, m->event);
        if (r < 0)
                log_error_errno(r, "Failed to watch the clock, not waiting for it: %m");
}

/* metrics.textfile changed on reload: a new writer; the counters carry on. */
static void manager_reload_metrics(Manager *m, const AgentConfig *old) {
        const char *path = m->config->metrics_textfile;
        if (old == m->config || streq_ptr(old->metrics_textfile, path))
                return;
        m->metrics = metrics_free(m->metrics);
        int r = metrics_new(path, &m->metrics);
        if (r >= 0)
                r = metrics_attach(m->metrics, m->event);
        if (r < 0)
                log_warning_errno(r, "Metrics textfile %s disabled: %m", path);
        manager_metrics_update(m, m->plan);
}

static void manager_metrics_file(Manager *m, const char *path, int r) {
        const AgentConfig *c = m->config;
        MetricsFileKind k = streq(path, c->containerd_dropin) ? METRICS_FILE_DROPIN
                : streq(path, c->k0s_config)                  ? METRICS_FILE_K0S_CONFIG
                                                              : METRICS_FILE_HOSTS;
        metrics_tracker_file(&m->metrics_tracker, k, r);
}

static void manager_metrics_k0s(Manager *m) {
        Supervisor *s = m->supervisor;
        metrics_tracker_k0s(&m->metrics_tracker, supervisor_get_pid(s),
                            supervisor_get_started_usec(s), supervisor_is_adopted(s),
                            supervisor_get_state(s) == SUPERVISOR_STOPPING,
                            supervisor_get_last_exit(s), now_usec(CLOCK_MONOTONIC));
}

/* The gauges from the current state, the counters from the tracker; written if anything
 * changed (metrics.c rate-limits). */
static void manager_metrics_update(Manager *m, const Plan *p) {
        if (!m->metrics)
                return;
        const NetState *n = netwatch_get_state(m->netwatch);
        const TailnetStatus *t = m->tailnet ? tailnet_get_status(m->tailnet) : NULL;
        MetricsSnapshot s = m->metrics_tracker.snap;

        if (m->have_version)
                snprintf(s.k0s_version, sizeof(s.k0s_version), "%s", m->k0s_version.text);
        s.gate_open = p && p->gate_open;
        s.interface_present = n && n->present;
        s.interface_up = n && n->up;
        s.backend_state = t ? t->backend_state : _BACKEND_STATE_INVALID;
        s.self_online = t && t->self_online;
        s.localapi_reconnects = m->tailnet ? tailnet_get_reconnects(m->tailnet) : 0;
        metrics_count_endpoints(m->config, t, now_usec(CLOCK_REALTIME), &s);
        s.clock = clock_watch_get_fact(m->clock);
        s.clock_synced = clock_watch_is_synced(m->clock);
        s.clock_steps = clock_watch_get_jumps(m->clock);
        int r = metrics_update(m->metrics, &s);
        if (r < 0)
                log_warning_errno(r, "Failed to update the metrics, ignoring: %m");
}

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
        r = files_new(NULL, &m->files);
        if (r < 0)
                return r;

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

        manager_setup_watchdog(m);

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

        r = manager_start_clock_and_metrics(m);
        if (r < 0)
                return r;

        (void) manager_watch_binary(m);

        r = supervisor_adopt(m->supervisor, c->k0s_binary);
        if (r < 0)
                log_warning_errno(r, "Failed to look for a running k0s, ignoring: %m");

        manager_load_last_address(m);
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
        metrics_flush(m->metrics);
        m->metrics = metrics_free(m->metrics);
        m->clock = clock_watch_free(m->clock);
        m->version_probe = version_probe_free(m->version_probe);
        m->binary_watch = binary_watch_free(m->binary_watch);
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
        m->unit_job = unit_job_query_free(m->unit_job);
        m->files = files_free(m->files);
        strv_free(m->warnings_logged);
        strv_free(m->errors_logged);
        strv_free(m->notices_logged);
        strv_free(m->holds_logged);
        free(m->base_config_error);
        free(m->last_address);
        free(m->running_hash);
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
