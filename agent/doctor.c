/* SPDX-License-Identifier: MIT */
/*
 * `k0s-tsagent doctor`: argv, the context every check reads (config, status.json, LocalAPI
 * /status, the interface, the k0s config and process), the result list and its output (human
 * grouped by area, or JSON) and the exit code. Read-only: it writes no file and restarts
 * nothing. The checks themselves live in doctor-checks-*.c.
 */

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json-util.h"
#include "atomic-file.h"
#include "curl-glue.h"
#include "doctor-rules.h"
#include "doctor.h"
#include "render-cli.h"
#include "status.h"
#include "util.h"

#define LOCALAPI_STATUS_URL "http://local-tailscaled.sock/localapi/v0/status"
#define DOCTOR_TEXT_MAX 2048

static const char *const severity_table[_DOCTOR_SEVERITY_MAX] = {
        [DOCTOR_OK] = "ok",           [DOCTOR_INFO] = "info",   [DOCTOR_SKIPPED] = "skipped",
        [DOCTOR_WARNING] = "warning", [DOCTOR_ERROR] = "error",
};

const char *doctor_severity_to_string(DoctorSeverity s) {
        return s >= 0 && s < _DOCTOR_SEVERITY_MAX ? severity_table[s] : NULL;
}

bool doctor_wants(const Doctor *d, const char *id) {
        if (!d->only)
                return true;
        for (char **i = d->only; *i; i++)
                if (strcasecmp(*i, id) == 0)
                        return true;
        return false;
}

bool doctor_is_live(const Doctor *d) {
        return isempty(d->root) || strspn(d->root, "/") == strlen(d->root);
}

char *doctor_path(const Doctor *d, const char *path) {
        return doctor_is_live(d) ? strdup(path) : path_join_root(d->root, path);
}

int doctor_read(const Doctor *d, const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *p = doctor_path(d, path);
        size_t len;
        if (!p)
                return -ENOMEM;
        return read_file_full(p, max, ret, ret_len ?: &len);
}

const char *doctor_self_ipv4(const Doctor *d) {
        if (d->tn && d->tn->ipv4)
                return d->tn->ipv4;
        for (char **a = d->link.ipv4; a && *a; a++)
                if (address_is_tailnet_ipv4(*a))
                        return *a;
        return NULL;
}

void doctor_report(Doctor *d, const char *id, const char *area, DoctorSeverity sev,
                   const char *evidence, const char *fix, const char *title_fmt, ...) {
        _cleanup_free_ char *title = NULL;
        va_list ap;

        if (!doctor_wants(d, id))
                return;
        va_start(ap, title_fmt);
        if (vasprintf(&title, title_fmt, ap) < 0)
                title = NULL;
        va_end(ap);
        DoctorCheck *n = realloc(d->checks, (d->n_checks + 1) * sizeof(DoctorCheck));
        if (!n)
                return;
        d->checks = n;
        d->checks[d->n_checks++] = (DoctorCheck){
                .id = strdup(id),
                .area = strdup(area),
                .title = str_sanitize(title ?: "?", DOCTOR_TEXT_MAX),
                .evidence = str_sanitize(evidence ?: "", DOCTOR_TEXT_MAX),
                .fix = str_sanitize(fix ?: "", DOCTOR_TEXT_MAX),
                .severity = sev,
        };
}

static void doctor_done(Doctor *d) {
        for (size_t i = 0; i < d->n_checks; i++) {
                free(d->checks[i].id);
                free(d->checks[i].area);
                free(d->checks[i].title);
                free(d->checks[i].evidence);
                free(d->checks[i].fix);
        }
        free(d->checks);
        strv_free(d->only);
        cJSON_Delete(d->agent_status);
        free(d->ts_json);
        cJSON_Delete(d->ts);
        tailnet_status_free(d->tn);
        free(d->ts_error);
        doctor_link_done(&d->link);
        strv_free(d->k0s_argv);
        free(d->k0s_yaml);
        free(d->k0s_yaml_path);
        strv_free(d->controllers);
        strv_free(d->controllers_from);
        free(d->pod_cidr);
        free(d->service_cidr);
}

/* GET /localapi/v0/status, blocking with a 2 s deadline: fine for a one-shot CLI. */
static void load_localapi(Doctor *d) {
        _cleanup_free_ char *sock = doctor_path(d, d->cfg->tailscale_socket);
        _cleanup_(curl_easy_cleanupp) CURL *easy = NULL;
        CurlBody body = { .max = TAILNET_STATUS_MAX_SIZE };
        if (!sock || curl_glue_easy_new(sock, 1000, 2000, &easy) < 0 ||
            curl_easy_setopt(easy, CURLOPT_URL, LOCALAPI_STATUS_URL) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, curl_body_write) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body) != CURLE_OK) {
                d->ts_error = strdup("cannot set up a LocalAPI request");
                return;
        }
        CURLcode cc = curl_easy_perform(easy);
        if (curl_glue_result(easy, cc, 2 * USEC_PER_SEC, &body, &d->ts_error) != 0) {
                curl_body_reset(&body);
                return;
        }
        d->ts_json = TAKE_PTR(body.data);
        d->ts = cJSON_ParseWithLength(d->ts_json, body.size);
        if (tailnet_status_parse(d->ts_json, body.size, &d->tn) < 0 || !d->ts)
                d->ts_error = strdup("LocalAPI /status is not valid status JSON");
}

static void load_agent_status(Doctor *d) {
        _cleanup_free_ char *path = strdup_printf("%s/%s", d->cfg->state_dir, STATUS_FILE_NAME);
        _cleanup_free_ char *text = NULL;
        size_t len;
        if (path && doctor_read(d, path, 16u * 1024u * 1024u, &text, &len) >= 0)
                d->agent_status = cJSON_ParseWithLength(text, len);
}

/* The k0s that runs now: status.json's pid (and argv), then /proc/PID/cmdline on the live
 * system (the argv status.json records is the one the agent meant to run). */
static void load_k0s_process(Doctor *d) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(d->agent_status, "k0s");
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(k, "pid");
        const cJSON *argv = cJSON_GetObjectItemCaseSensitive(k, "argv"), *a;
        if (!cJSON_IsNumber(pid) || pid->valuedouble < 1)
                return;
        d->k0s_pid = (pid_t) pid->valuedouble;
        if (doctor_is_live(d)) {
                _cleanup_free_ char *p = strdup_printf("/proc/%d/cmdline", (int) d->k0s_pid);
                _cleanup_free_ char *text = NULL;
                size_t len;
                if (p && read_file_full(p, 1024 * 1024, &text, &len) >= 0 && len > 0) {
                        d->k0s_argv = calloc(1, sizeof(char *));
                        for (size_t i = 0; d->k0s_argv && i < len; i += strlen(text + i) + 1)
                                (void) strv_extend(&d->k0s_argv, text + i);
                        return;
                }
                d->k0s_pid = 0; /* gone: status.json is stale */
                return;
        }
        d->k0s_argv = calloc(1, sizeof(char *));
        cJSON_ArrayForEach(a, argv) if (cJSON_IsString(a) && d->k0s_argv)(void)
                strv_extend(&d->k0s_argv, a->valuestring);
}

static void load_k0s_config(Doctor *d) {
        const char *paths[] = { d->cfg->k0s_config, d->cfg->k0s_base_config };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                if (doctor_read(d, paths[i], 4u * 1024u * 1024u, &d->k0s_yaml, NULL) >= 0) {
                        d->k0s_yaml_path = strdup(paths[i]);
                        return;
                }
}

int doctor_k0s_yaml(const Doctor *d, yaml_document_t *ret) {
        if (!d->k0s_yaml)
                return -ENOENT;
        return doctor_yaml_load(d->k0s_yaml, strlen(d->k0s_yaml), ret);
}

/* k0s's defaults: pkg/apis/k0s/v1beta1/network.go DefaultNetwork. */
static void load_cidrs(Doctor *d) {
        yaml_document_t doc;
        const char *pod = NULL, *svc = NULL;
        bool have = doctor_k0s_yaml(d, &doc) >= 0;
        if (have) {
                pod = doctor_yaml_scalar(doctor_yaml_get(&doc, "spec.network.podCIDR"));
                svc = doctor_yaml_scalar(doctor_yaml_get(&doc, "spec.network.serviceCIDR"));
        }
        d->pod_cidr = strdup(pod ?: "10.244.0.0/16");
        d->service_cidr = strdup(svc ?: "10.96.0.0/12");
        if (have)
                yaml_document_delete(&doc);
}

static void load_k0s_version(Doctor *d) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(d->agent_status, "k0s_version");
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(d->agent_status, "k0s");
        if (!cJSON_IsString(v))
                v = cJSON_GetObjectItemCaseSensitive(k, "version");
        if (!streq(d->cfg->k0s_version, "auto"))
                d->have_k0s_version = k0s_version_parse(d->cfg->k0s_version, &d->k0s_version) >= 0;
        else if (cJSON_IsString(v))
                d->have_k0s_version = k0s_version_parse(v->valuestring, &d->k0s_version) >= 0;
        if (d->have_k0s_version || !doctor_is_live(d))
                return;
        char *argv[] = { d->cfg->k0s_binary, (char *) "version", NULL };
        char *const *argvs[] = { argv };
        char *out = NULL;
        int st;
        doctor_run_many(argvs, 1, 2 * USEC_PER_SEC, 4096, &out, &st);
        if (out && st == 0)
                d->have_k0s_version = k0s_version_parse(out, &d->k0s_version) >= 0;
        free(out);
}

static void doctor_load(Doctor *d) {
        d->now_usec = (uint64_t) time(NULL) * USEC_PER_SEC;
        d->is_root = geteuid() == 0;
        d->controllers = calloc(1, sizeof(char *));
        load_agent_status(d);
        load_localapi(d);
        (void) doctor_link_load(d->cfg->interface, &d->link);
        load_k0s_process(d);
        load_k0s_config(d);
        load_k0s_version(d);
        load_cidrs(d);
        doctor_load_controllers(d);
}

/* Worst first within an area; areas in the order of their worst result. */
static int area_rank(const Doctor *d, const char *area) {
        int worst = 0;
        for (size_t i = 0; i < d->n_checks; i++)
                if (streq(d->checks[i].area, area))
                        worst = MAX(worst, (int) d->checks[i].severity);
        return worst;
}

static const Doctor *sort_ctx;

static int check_cmp(const void *a, const void *b) {
        const DoctorCheck *x = a, *y = b;
        int rx = area_rank(sort_ctx, x->area), ry = area_rank(sort_ctx, y->area);
        if (rx != ry)
                return ry - rx;
        int c = strcmp(x->area, y->area);
        if (c != 0)
                return c;
        if (x->severity != y->severity)
                return (int) y->severity - (int) x->severity;
        return strcmp(x->id, y->id);
}

static void count(const Doctor *d, unsigned n[static _DOCTOR_SEVERITY_MAX]) {
        memset(n, 0, sizeof(unsigned) * _DOCTOR_SEVERITY_MAX);
        for (size_t i = 0; i < d->n_checks; i++)
                n[d->checks[i].severity]++;
}

static int print_json(const Doctor *d, FILE *out) {
        _cleanup_(cJSON_Deletep) cJSON *root = cJSON_CreateObject();
        cJSON *checks = cJSON_AddArrayToObject(root, "checks");
        cJSON *summary = cJSON_AddObjectToObject(root, "summary");
        unsigned n[_DOCTOR_SEVERITY_MAX];
        if (!checks || !summary)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_checks; i++) {
                const DoctorCheck *c = &d->checks[i];
                cJSON *o = cJSON_CreateObject();
                if (!o)
                        return -ENOMEM;
                cJSON_AddStringToObject(o, "id", c->id);
                cJSON_AddStringToObject(o, "area", c->area);
                cJSON_AddStringToObject(o, "severity", doctor_severity_to_string(c->severity));
                cJSON_AddStringToObject(o, "title", c->title);
                cJSON_AddStringToObject(o, "evidence", c->evidence);
                cJSON_AddStringToObject(o, "fix", c->fix);
                cJSON_AddItemToArray(checks, o);
        }
        count(d, n);
        cJSON_AddNumberToObject(summary, "error", n[DOCTOR_ERROR]);
        cJSON_AddNumberToObject(summary, "warning", n[DOCTOR_WARNING]);
        cJSON_AddNumberToObject(summary, "ok", n[DOCTOR_OK]);
        cJSON_AddNumberToObject(summary, "info", n[DOCTOR_INFO]);
        cJSON_AddNumberToObject(summary, "skipped", n[DOCTOR_SKIPPED]);
        _cleanup_free_ char *s = cJSON_Print(root);
        if (!s)
                return -ENOMEM;
        fprintf(out, "%s\n", s);
        return 0;
}

static void print_human(const Doctor *d, FILE *out, bool color) {
        static const char *const colors[_DOCTOR_SEVERITY_MAX] = {
                [DOCTOR_OK] = "\033[32m",      [DOCTOR_INFO] = "\033[36m",
                [DOCTOR_SKIPPED] = "\033[2m",  [DOCTOR_WARNING] = "\033[33m",
                [DOCTOR_ERROR] = "\033[1;31m",
        };
        const char *area = NULL;
        unsigned n[_DOCTOR_SEVERITY_MAX];
        for (size_t i = 0; i < d->n_checks; i++) {
                const DoctorCheck *c = &d->checks[i];
                if (!area || !streq(area, c->area))
                        fprintf(out, "%s%s%s%s\n", area ? "\n" : "", color ? "\033[1m" : "",
                                c->area, color ? "\033[0m" : "");
                area = c->area;
                fprintf(out, "  %s%-7s%s %-5s %s\n", color ? colors[c->severity] : "",
                        doctor_severity_to_string(c->severity), color ? "\033[0m" : "", c->id,
                        c->title);
                if (!isempty(c->evidence) && c->severity != DOCTOR_OK)
                        fprintf(out, "                evidence: %s\n", c->evidence);
                if (!isempty(c->fix) && c->severity >= DOCTOR_WARNING)
                        fprintf(out, "                fix: %s\n", c->fix);
        }
        count(d, n);
        fprintf(out, "%s%u errors, %u warnings, %u ok, %u skipped\n", d->n_checks ? "\n" : "",
                n[DOCTOR_ERROR], n[DOCTOR_WARNING], n[DOCTOR_OK] + n[DOCTOR_INFO],
                n[DOCTOR_SKIPPED]);
}

static int exit_code(const Doctor *d) {
        int code = 0;
        for (size_t i = 0; i < d->n_checks; i++)
                if (d->checks[i].severity == DOCTOR_ERROR)
                        code = 2;
                else if (d->checks[i].severity == DOCTOR_WARNING && code == 0)
                        code = 1;
        return code;
}

static int parse_check_list(const char *arg, char ***only) {
        _cleanup_free_ char *copy = strdup(arg);
        char *save = NULL;
        if (!copy)
                return -ENOMEM;
        for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
                if (strv_extend(only, t) < 0)
                        return -ENOMEM;
        return 0;
}

int doctor_cli(const char *config_path, int argc, char **argv) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "check", required_argument, NULL, 'C' },
                { "root", required_argument, NULL, 'r' },
                {},
        };
        _cleanup_(config_freep) AgentConfig *cfg = NULL;
        Doctor d = { 0 };
        bool json = false;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'C':
                        if (parse_check_list(optarg, &d.only) < 0)
                                return 1;
                        break;
                case 'r':
                        d.root = optarg;
                        break;
                default:
                        strv_free(d.only);
                        return 2;
                }
        if (optind < argc) {
                strv_free(d.only);
                return cli_usage_error("doctor: unexpected argument", argv[optind]);
        }
        if (cli_load_config(config_path, &cfg) < 0) {
                strv_free(d.only);
                return 2;
        }
        d.cfg = cfg;
        doctor_load(&d);
        doctor_checks_tailscale(&d);
        doctor_checks_host(&d);
        doctor_checks_k0s(&d);
        doctor_checks_dns(&d);
        doctor_checks_containerd(&d);
        doctor_checks_firewall(&d);
        doctor_checks_routing(&d);
        doctor_checks_net(&d);
        doctor_checks_k8s(&d);

        sort_ctx = &d;
        qsort(d.checks, d.n_checks, sizeof(DoctorCheck), check_cmp);
        if (json)
                (void) print_json(&d, stdout);
        else
                print_human(&d, stdout, isatty(STDOUT_FILENO) && !getenv("NO_COLOR"));
        int code = exit_code(&d);
        doctor_done(&d);
        return code;
}
