/* SPDX-License-Identifier: MIT */
/*
 * doctor's boot and host checks: BT07 (k0s's own unit enabled beside the agent, or running
 * instead of it), BT08 (flags and environment in that unit the agent's config lacks), BT02/BT03
 * (networkd and tailscale0), BT04 (clock synchronized, RTC), HA04 (etcd disk, backup age), HA05
 * (NLLB with more than one controller).
 */

#include <dirent.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/timex.h>
#include <sys/utsname.h>

#include "doctor-rules.h"
#include "doctor.h"
#include "util.h"

#define AREA "host"

static const char *k0s_unit(const Doctor *d) {
        return k0s_role_is_controller(d->cfg->role) ? "k0scontroller.service" : "k0sworker.service";
}

static bool wants_link(const Doctor *d, const char *unit) {
        _cleanup_free_ char *rel =
                strdup_printf("/etc/systemd/system/multi-user.target.wants/%s", unit);
        _cleanup_free_ char *p = rel ? doctor_path(d, rel) : NULL;
        struct stat st;
        return p && lstat(p, &st) >= 0;
}

static void check_bt07(Doctor *d) {
        const char *unit = k0s_unit(d);
        _cleanup_free_ char *file = NULL, *active = NULL;
        bool live = doctor_is_live(d) && doctor_unit_state(unit, &file, &active) >= 0;
        bool enabled = live ? streq(file, "enabled") : wants_link(d, unit);
        bool running = live && (streq(active, "active") || streq(active, "activating"));
        _cleanup_free_ char *ev =
                strdup_printf("%s: %s%s%s", unit, enabled ? "enabled" : "not enabled",
                              live ? ", " : " (files below --root)", live ? active : "");
        _cleanup_free_ char *fix = strdup_printf(
                "systemctl disable --now %s && systemctl enable --now k0s-tsagent (to switch "
                "back: systemctl disable --now k0s-tsagent && systemctl enable --now %s)",
                unit, unit);
        if (running && !d->agent_status)
                doctor_report(d, "BT07", AREA, DOCTOR_WARNING, ev, fix,
                              "k0s runs from its own %s instead of the agent", unit);
        else if (enabled)
                doctor_report(d, "BT07", AREA, DOCTOR_ERROR, ev, fix,
                              "%s is enabled beside the agent: two k0s would start at boot", unit);
        else
                doctor_report(d, "BT07", AREA, DOCTOR_OK, ev, NULL, "%s is not enabled", unit);
}

/* Flags the agent sets itself, so their absence from k0s.args is expected. */
static bool agent_owned_flag(const char *a) {
        static const char *const owned[] = { "--token-file",         "--config",
                                             "--enable-worker",      "--single",
                                             "--kubelet-extra-args", "-c" };
        for (size_t i = 0; i < ELEMENTSOF(owned); i++)
                if (streq(a, owned[i]) || (startswith(a, owned[i]) && a[strlen(owned[i])] == '='))
                        return true;
        return false;
}

static void check_bt08(Doctor *d) {
        _cleanup_free_ char *path = strdup_printf("/etc/systemd/system/%s", k0s_unit(d));
        _cleanup_free_ char *text = NULL;
        _cleanup_strv_free_ char **exec = NULL, **env = NULL, **lost = calloc(1, sizeof(char *));
        if (!path || !lost || doctor_read(d, path, 1 << 20, &text, NULL) < 0 ||
            doctor_unit_parse(text, &exec, &env) < 0) {
                doctor_report(d, "BT08", AREA, DOCTOR_OK, path, NULL,
                              "no k0s unit file whose flags could be lost");
                return;
        }
        for (size_t i = 2; exec[0] && exec[1] && i < strv_length(exec); i++)
                if (startswith(exec[i], "-") && !agent_owned_flag(exec[i]) &&
                    !strv_contains(d->cfg->k0s_args, exec[i]))
                        (void) strv_extend(&lost, exec[i]);
        for (size_t i = 0; env[i]; i++)
                if (!strv_contains(d->cfg->k0s_env, env[i]))
                        (void) strv_extend(&lost, env[i]);
        _cleanup_free_ char *list = strv_join(lost, " ");
        _cleanup_free_ char *ev =
                strdup_printf("%s: not in k0s.args/k0s.env: %s", path, lost[0] ? list : "none");
        _cleanup_free_ char *fix = strdup_printf("k0s-tsagent import-unit %s (or add them to "
                                                 "k0s.args / k0s.env)",
                                                 path);
        if (lost[0])
                doctor_report(d, "BT08", AREA, DOCTOR_WARNING, ev, fix,
                              "%s carries %zu flag(s)/variable(s) the agent does not pass "
                              "(e.g. %s): losing --data-dir starts the node from empty state",
                              path, strv_length(lost), lost[0]);
        else
                doctor_report(d, "BT08", AREA, DOCTOR_OK, ev, NULL,
                              "the agent passes every flag of %s", path);
}

/* A .network file whose [Match] Name= matches the interface, and its text. */
static char *network_file_for(const Doctor *d, char **ret_path) {
        static const char *const dirs[] = { "/etc/systemd/network", "/run/systemd/network",
                                            "/usr/lib/systemd/network", "/lib/systemd/network" };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *dp = doctor_path(d, dirs[i]);
                DIR *dir = dp ? opendir(dp) : NULL;
                struct dirent *de;
                while (dir && (de = readdir(dir))) {
                        size_t l = strlen(de->d_name);
                        if (l < 9 || !streq(de->d_name + l - 8, ".network"))
                                continue;
                        _cleanup_free_ char *rel = strdup_printf("%s/%s", dirs[i], de->d_name);
                        char *text = NULL;
                        if (!rel || doctor_read(d, rel, 1 << 20, &text, NULL) < 0)
                                continue;
                        const char *n = strstr(text, "\nName=");
                        _cleanup_strv_free_ char **names = NULL;
                        if (n && (names = calloc(1, sizeof(char *)))) {
                                _cleanup_free_ char *v = strndup(n + 6, strcspn(n + 6, "\n"));
                                char *save = NULL;
                                for (char *t = v ? strtok_r(v, " ", &save) : NULL; t;
                                     t = strtok_r(NULL, " ", &save))
                                        if (fnmatch(t, d->cfg->interface, 0) == 0) {
                                                closedir(dir);
                                                *ret_path = TAKE_PTR(rel);
                                                return text;
                                        }
                        }
                        free(text);
                }
                if (dir)
                        closedir(dir);
        }
        return NULL;
}

static void check_bt02(Doctor *d) {
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ char *text = network_file_for(d, &path);
        if (!text) {
                doctor_report(d, "BT02", AREA, DOCTOR_OK, NULL, NULL,
                              "no systemd-networkd .network file matches %s", d->cfg->interface);
                return;
        }
        bool unmanaged = strstr(text, "Unmanaged=yes") || strstr(text, "Unmanaged=true");
        bool not_required = strstr(text, "RequiredForOnline=no") != NULL;
        _cleanup_free_ char *ev = strdup_printf("%s matches %s%s%s", path, d->cfg->interface,
                                                unmanaged ? "; Unmanaged=yes" : "",
                                                not_required ? "; RequiredForOnline=no" : "");
        if (unmanaged || not_required)
                doctor_report(d, "BT02", AREA, DOCTOR_OK, ev, NULL,
                              "networkd leaves %s alone at boot", d->cfg->interface);
        else
                doctor_report(d, "BT02", AREA, DOCTOR_WARNING, ev,
                              "[Link] Unmanaged=yes (or RequiredForOnline=no) in that file",
                              "networkd manages %s: wait-online times out, tailscaled owns it",
                              d->cfg->interface);
}

static bool networkd_conf_has(const Doctor *d, const char *key) {
        _cleanup_free_ char *text = NULL, *dp = doctor_path(d, "/etc/systemd/networkd.conf.d");
        if (doctor_read(d, "/etc/systemd/networkd.conf", 1 << 20, &text, NULL) >= 0 &&
            strstr(text, key))
                return true;
        DIR *dir = dp ? opendir(dp) : NULL;
        struct dirent *de;
        bool found = false;
        while (dir && !found && (de = readdir(dir))) {
                _cleanup_free_ char *rel =
                        strdup_printf("/etc/systemd/networkd.conf.d/%s", de->d_name);
                _cleanup_free_ char *t = NULL;
                found = rel && doctor_read(d, rel, 1 << 20, &t, NULL) >= 0 && strstr(t, key);
        }
        if (dir)
                closedir(dir);
        return found;
}

static void check_bt03(Doctor *d) {
        _cleanup_free_ char *file = NULL, *active = NULL;
        bool on = doctor_is_live(d)
                ? doctor_unit_state("systemd-networkd.service", &file, &active) >= 0 &&
                        streq(active, "active")
                : wants_link(d, "systemd-networkd.service");
        if (!on) {
                doctor_report(d, "BT03", AREA, DOCTOR_OK, NULL, NULL,
                              "systemd-networkd is not active");
                return;
        }
        bool rules = networkd_conf_has(d, "ManageForeignRoutingPolicyRules=no");
        bool routes = networkd_conf_has(d, "ManageForeignRoutes=no");
        _cleanup_free_ char *ev =
                strdup_printf("networkd active; ManageForeignRoutingPolicyRules"
                              "=no %s, ManageForeignRoutes=no %s",
                              rules ? "set" : "missing", routes ? "set" : "missing");
        if (rules && routes)
                doctor_report(d, "BT03", AREA, DOCTOR_OK, ev, NULL,
                              "networkd keeps tailscale's rules and routes");
        else
                doctor_report(d, "BT03", AREA, DOCTOR_WARNING, ev,
                              "/etc/systemd/networkd.conf.d/tailscale.conf: [Network] "
                              "ManageForeignRoutingPolicyRules=no ManageForeignRoutes=no",
                              "a networkd restart flushes tailscale's ip rules and table 52");
}

static void check_bt04(Doctor *d) {
        struct timex tx = {};
        if (!doctor_is_live(d)) {
                doctor_report(d, "BT04", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: --root is not the live system");
                return;
        }
        int state = adjtimex(&tx);
        bool synced = state >= 0 && state != TIME_ERROR && !(tx.status & STA_UNSYNC);
        struct stat st;
        bool rtc = stat("/sys/class/rtc/rtc0", &st) >= 0;
        _cleanup_free_ char *ev =
                strdup_printf("adjtimex: %s; /sys/class/rtc/rtc0 %s",
                              synced ? "synchronized" : "STA_UNSYNC", rtc ? "present" : "absent");
        if (!synced)
                doctor_report(d, "BT04", AREA, rtc ? DOCTOR_WARNING : DOCTOR_ERROR, ev,
                              "systemctl enable --now systemd-timesyncd (or chrony); give the "
                              "site an NTP server on the LAN",
                              "the clock is not synchronized%s: certificates may look "
                              "expired or not yet valid",
                              rtc ? "" : " and there is no RTC");
        else
                doctor_report(d, "BT04", AREA, DOCTOR_OK, ev, NULL, "clock synchronized%s",
                              rtc ? "" : " (no RTC: it depends on NTP after every power cut)");
}

static const char *data_dir(const Doctor *d) {
        for (char **a = d->cfg->k0s_args; a && *a; a++)
                if (startswith(*a, "--data-dir="))
                        return *a + strlen("--data-dir=");
        return "/var/lib/k0s";
}

static void check_ha04_backup(Doctor *d) {
        if (!d->cfg->doctor_backup_dir) {
                doctor_report(d, "HA04", AREA, DOCTOR_INFO, NULL, NULL,
                              "no doctor.backup_dir configured: backup age not checked");
                return;
        }
        _cleanup_free_ char *dp = doctor_path(d, d->cfg->doctor_backup_dir);
        DIR *dir = dp ? opendir(dp) : NULL;
        struct dirent *de;
        time_t newest = 0;
        while (dir && (de = readdir(dir))) {
                struct stat st;
                if (de->d_name[0] != '.' && fstatat(dirfd(dir), de->d_name, &st, 0) >= 0 &&
                    S_ISREG(st.st_mode))
                        newest = MAX(newest, st.st_mtime);
        }
        if (dir)
                closedir(dir);
        uint64_t age = newest ? d->now_usec / USEC_PER_SEC - (uint64_t) newest : UINT64_MAX;
        _cleanup_free_ char *ev =
                strdup_printf("%s: newest backup %llu h old", d->cfg->doctor_backup_dir,
                              newest ? (unsigned long long) age / 3600 : 0ULL);
        if (age > 7 * 24 * 3600)
                doctor_report(d, "HA04", AREA, DOCTOR_WARNING, newest ? ev : dp,
                              "k0s backup --save-path <doctor.backup_dir> (from a timer)", "%s",
                              newest ? "the last etcd backup is older than 7 days"
                                     : "no etcd backup found");
        else
                doctor_report(d, "HA04", AREA, DOCTOR_OK, ev, NULL, "etcd backup is recent");
}

static void check_ha04(Doctor *d) {
        if (!k0s_role_is_controller(d->cfg->role)) {
                doctor_report(d, "HA04", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: not a controller");
                return;
        }
        _cleanup_free_ char *etcd = strdup_printf("%s/etcd", data_dir(d));
        const char *cand[] = { etcd, data_dir(d), "/" };
        struct statvfs sv;
        for (size_t i = 0; i < ELEMENTSOF(cand); i++) {
                _cleanup_free_ char *p = cand[i] ? doctor_path(d, cand[i]) : NULL;
                if (!p || statvfs(p, &sv) < 0)
                        continue;
                uint64_t free_b = (uint64_t) sv.f_bavail * sv.f_frsize;
                uint64_t total = (uint64_t) sv.f_blocks * sv.f_frsize;
                bool low = free_b < (2ULL << 30) || (total && free_b * 10 < total);
                _cleanup_free_ char *ev = strdup_printf(
                        "statvfs(%s): %llu MiB free of %llu MiB", cand[i],
                        (unsigned long long) (free_b >> 20), (unsigned long long) (total >> 20));
                doctor_report(d, "HA04", AREA, low ? DOCTOR_WARNING : DOCTOR_OK, ev,
                              "free space on the etcd filesystem (etcd stops writing when full)",
                              "etcd data filesystem: %llu MiB free",
                              (unsigned long long) (free_b >> 20));
                break;
        }
        check_ha04_backup(d);
}

static void check_ha05(Doctor *d) {
        yaml_document_t doc;
        if (doctor_k0s_yaml(d, &doc) < 0) {
                doctor_report(d, "HA05", AREA, DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: no k0s config to read");
                return;
        }
        yaml_node_t *n = doctor_yaml_get(&doc, "spec.network.nodeLocalLoadBalancing.enabled");
        const char *type = doctor_yaml_scalar(
                doctor_yaml_get(&doc, "spec.network.nodeLocalLoadBalancing.type"));
        bool on = streq_ptr(doctor_yaml_scalar(n), "true");
        size_t controllers = strv_length(d->controllers) + k0s_role_is_controller(d->cfg->role);
        struct utsname u = {};
        (void) uname(&u);
        bool no_envoy = startswith(u.machine, "armv7") || startswith(u.machine, "riscv");
        _cleanup_free_ char *ev = strdup_printf("%s:%u: nodeLocalLoadBalancing.enabled: %s; %zu "
                                                "controller(s) known; %s",
                                                d->k0s_yaml_path, doctor_yaml_line(n),
                                                on ? "true" : "false", controllers, u.machine);
        if (on && no_envoy && !streq_ptr(type, "Traefik"))
                doctor_report(d, "HA05", AREA, DOCTOR_ERROR, ev,
                              "spec.network.nodeLocalLoadBalancing.type: Traefik (k0s >= 1.36)",
                              "NLLB uses Envoy, which does not run on %s", u.machine);
        else if (!on && controllers > 1)
                doctor_report(d, "HA05", AREA, DOCTOR_WARNING, ev,
                              "spec.network.nodeLocalLoadBalancing.enabled: true (restart the "
                              "workers afterwards)",
                              "%zu controllers but no node-local load balancing: workers follow "
                              "one controller",
                              controllers);
        else
                doctor_report(d, "HA05", AREA, DOCTOR_OK, ev, NULL,
                              "NLLB %s with %zu controller(s)", on ? "enabled" : "off",
                              controllers);
        yaml_document_delete(&doc);
}

void doctor_checks_host(Doctor *d) {
        check_bt07(d);
        check_bt08(d);
        check_bt02(d);
        check_bt03(d);
        check_bt04(d);
        check_ha04(d);
        check_ha05(d);
}
