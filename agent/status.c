/* SPDX-License-Identifier: MIT */
/*
 * status.json: written by the daemon through atomic-file, read back by `k0s-tsagent status`.
 * Owns the file format and the human table; knows nothing of the event loop.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "atomic-file.h"
#include "status.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

const char *format_timestamp(char buf[static 32], uint64_t realtime_usec) {
        time_t t = (time_t) (realtime_usec / USEC_PER_SEC);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, 32, "?");
        return buf;
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

int status_show(const char *state_dir, bool json, FILE *out) {
        _cleanup_free_ char *path = strdup_printf("%s/%s", state_dir, STATUS_FILE_NAME);
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_file_full(path, 16u * 1024u * 1024u, &text, &len);
        if (r < 0)
                return r;
        _cleanup_(cJSON_Deletep) cJSON *root = cJSON_ParseWithLength(text, len);
        if (!root || !cJSON_IsObject(root))
                return -EBADMSG;

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

        const cJSON *iface = cJSON_GetObjectItemCaseSensitive(root, "interface");
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(root, "tailnet");
        const cJSON *health = cJSON_GetObjectItemCaseSensitive(k0s, "health");
        char up[32];
        format_uptime(up, sizeof(up), uptime);

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
        fprintf(out, "%-12s %s\n", "  Version:", jstr(k0s, "version") ?: "-");
        fprintf(out, "%-12s %s\n", "  Started:", jstr(k0s, "started") ?: "-");
        fprintf(out, "%-12s %s\n", "  Uptime:", started ? up : "-");
        fprintf(out, "%-12s %.0f\n", "  Restarts:", jnum(k0s, "restarts", 0));
        fprintf(out, "%-12s %s\n", "  Last exit:", jstr(k0s, "last_exit") ?: "-");
        fprintf(out, "%-12s %s%s%s\n", "  Health:", jbool(health, "ok"),
                jstr(health, "error") ? ": " : "", jstr(health, "error") ?: "");
        fprintf(out, "Files:\n");
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(root, "files")) {
                fprintf(out, "  %-60s %s%s%s\n", jstr(f, "path") ?: "?",
                        jstr(f, "written") ?: "not written", jstr(f, "error") ? "  ERROR: " : "",
                        jstr(f, "error") ?: "");
        }
        fprintf(out, "%-12s %s\n", "Last error:", jstr(root, "last_error") ?: "-");
        return 0;
}
