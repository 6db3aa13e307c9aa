/* SPDX-License-Identifier: MIT */
/*
 * doctor's network probes, all at once on one sd_event: a TCP connect (1 s) to every controller
 * peer on 6443/9443/8132 (+2380 between controllers) (HA09), and GET /v2/ (2 s) on every
 * registry endpoint through curl multi (CR05). Also finds the controller addresses the other
 * checks use. Nothing here waits on one probe before starting the next.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "curl-glue.h"
#include "doctor-rules.h"
#include "doctor.h"
#include "event-util.h"
#include "util.h"

#define TCP_TIMEOUT_USEC (1 * USEC_PER_SEC)
#define HTTP_TIMEOUT_MS 2000L
#define MAX_PROBES 256

static void add_controller(Doctor *d, const char *host, const char *from) {
        const char *self = doctor_self_ipv4(d);
        if (!host || !address_is_tailnet_ipv4(host) || streq_ptr(host, self) ||
            strv_contains(d->controllers, host))
                return;
        if (strv_extend(&d->controllers, host) >= 0 &&
            strv_extend(&d->controllers_from, from) < 0) {
                /* keep both vectors the same length */
                size_t n = strv_length(d->controllers);
                free(d->controllers[n - 1]);
                d->controllers[n - 1] = NULL;
        }
}

static void add_from_url(Doctor *d, const char *url, const char *from) {
        _cleanup_free_ char *host = NULL;
        unsigned port;
        if (url && doctor_url_host_port(url, &host, &port) >= 0)
                add_controller(d, host, from);
}

static const char *k0s_data_dir(const Doctor *d) {
        for (char **a = d->cfg->k0s_args; a && *a; a++)
                if (startswith(*a, "--data-dir="))
                        return *a + strlen("--data-dir=");
        return "/var/lib/k0s";
}

void doctor_load_controllers(Doctor *d) {
        _cleanup_free_ char *token = NULL, *kubeconf = NULL, *url = NULL, *url2 = NULL;
        _cleanup_free_ char *kpath = strdup_printf("%s/kubelet.conf", k0s_data_dir(d));
        size_t len;

        if (!d->controllers_from)
                d->controllers_from = calloc(1, sizeof(char *));
        if (doctor_read(d, d->cfg->k0s_token_file, 1024 * 1024, &token, &len) >= 0 &&
            doctor_token_server(token, len, &url) >= 0)
                add_from_url(d, url, d->cfg->k0s_token_file);
        if (kpath && doctor_read(d, kpath, 1024 * 1024, &kubeconf, NULL) >= 0 &&
            doctor_kubeconfig_server(kubeconf, &url2) >= 0)
                add_from_url(d, url2, kpath);
        if (!d->k0s_yaml)
                return;
        yaml_document_t doc;
        if (doctor_yaml_load(d->k0s_yaml, strlen(d->k0s_yaml), &doc) < 0)
                return;
        yaml_node_t *sans = doctor_yaml_get(&doc, "spec.api.sans");
        if (sans && sans->type == YAML_SEQUENCE_NODE)
                for (yaml_node_item_t *i = sans->data.sequence.items.start;
                     i < sans->data.sequence.items.top; i++)
                        add_controller(d, doctor_yaml_scalar(yaml_document_get_node(&doc, *i)),
                                       d->k0s_yaml_path);
        add_from_url(d, doctor_yaml_scalar(doctor_yaml_get(&doc, "spec.api.externalAddress")),
                     d->k0s_yaml_path);
        yaml_document_delete(&doc);
}

typedef struct Probe {
        struct NetRun *run;
        char *label; /* "100.64.0.2:6443" or the endpoint URL */
        const char *what; /* "API", "join", ... or "registry NAME" */
        unsigned port;
        int fd;
        sd_event_source *io;
        CURL *easy;
        CurlBody body;
        int error; /* 0 = reachable; -errno */
        char *detail; /* curl's line for HTTP, NULL for TCP */
        long http_code;
        bool done;
} Probe;

typedef struct NetRun {
        sd_event *event;
        CurlGlue *glue;
        sd_event_source *tcp_timer, *end_timer;
        Probe probes[MAX_PROBES];
        size_t n, pending;
} NetRun;

static void probe_finish(Probe *p, int error) {
        if (p->done)
                return;
        p->done = true;
        p->error = error;
        p->io = sd_event_source_disable_unref(p->io);
        if (p->fd >= 0)
                close(p->fd);
        p->fd = -1;
        if (--p->run->pending == 0)
                (void) sd_event_exit(p->run->event, 0);
}

static int on_connect(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Probe *p = userdata;
        int err = 0;
        socklen_t l = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                err = errno;
        probe_finish(p, -err);
        return 0;
}

static int on_tcp_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        NetRun *run = userdata;
        for (size_t i = 0; i < run->n; i++)
                if (!run->probes[i].easy)
                        probe_finish(&run->probes[i], -ETIMEDOUT);
        return 0;
}

static int on_end(sd_event_source *s, uint64_t usec, void *userdata) {
        return sd_event_exit(((NetRun *) userdata)->event, 0);
}

static Probe *probe_new(NetRun *run, const char *what, char *label) {
        if (!label || run->n >= MAX_PROBES) {
                free(label);
                return NULL;
        }
        Probe *p = &run->probes[run->n++];
        *p = (Probe){ .run = run, .label = label, .what = what, .fd = -1 };
        run->pending++;
        return p;
}

static void tcp_start(NetRun *run, const char *addr, unsigned port, const char *what) {
        Probe *p = probe_new(run, what, strdup_printf("%s:%u", addr, port));
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        if (!p)
                return;
        p->port = port;
        if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
                return probe_finish(p, -EINVAL);
        p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (p->fd < 0)
                return probe_finish(p, -errno);
        if (connect(p->fd, (struct sockaddr *) &sa, sizeof(sa)) >= 0)
                return probe_finish(p, 0);
        if (errno != EINPROGRESS)
                return probe_finish(p, -errno);
        if (sd_event_add_io(run->event, &p->io, p->fd, EPOLLOUT, on_connect, p) < 0)
                probe_finish(p, -ENOMEM);
}

static void on_http_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Probe *p = userdata;
        (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &p->http_code);
        /* any HTTP answer proves the registry is there (401 is normal for /v2/) */
        if (result != CURLE_OK || p->http_code == 0) {
                (void) curl_glue_result(easy, result, HTTP_TIMEOUT_MS * USEC_PER_MSEC, &p->body,
                                        &p->detail);
                probe_finish(p, -EHOSTUNREACH);
        } else
                probe_finish(p, 0);
}

static char *v2_url(const char *url) {
        size_t n = strlen(url);
        while (n > 0 && url[n - 1] == '/')
                n--;
        if (n >= 3 && strncmp(url + n - 3, "/v2", 3) == 0)
                return strdup_printf("%.*s/", (int) n, url);
        return strdup_printf("%.*s/v2/", (int) n, url);
}

static void http_start(NetRun *run, Doctor *d, const RegistryEndpoint *e, const char *url,
                       const char *what) {
        Probe *p = probe_new(run, what, v2_url(url));
        if (!p)
                return;
        p->body.max = 64 * 1024;
        p->easy = curl_easy_init();
        _cleanup_free_ char *ca = e->ca ? doctor_path(d, e->ca) : NULL;
        if (!p->easy || curl_easy_setopt(p->easy, CURLOPT_URL, p->label) != CURLE_OK ||
            curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(p->easy, CURLOPT_PROXY, "") != CURLE_OK ||
            curl_easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT_MS, HTTP_TIMEOUT_MS) != CURLE_OK ||
            curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS) != CURLE_OK ||
            curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, curl_body_write) != CURLE_OK ||
            curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, &p->body) != CURLE_OK ||
            (ca && curl_easy_setopt(p->easy, CURLOPT_CAINFO, ca) != CURLE_OK) ||
            (e->skip_verify && curl_easy_setopt(p->easy, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK) ||
            curl_glue_add(run->glue, p->easy, on_http_done, p) < 0)
                probe_finish(p, -ENOMEM);
}

static const char *port_name(unsigned port) {
        switch (port) {
        case 6443:
                return "API";
        case 9443:
                return "join (k0s API)";
        case 8132:
                return "konnectivity";
        case 2380:
                return "etcd peer";
        }
        return "?";
}

/* An endpoint's URL: url: as written, peer: through the peer's tailnet IPv4. */
static char *endpoint_url(const Doctor *d, const RegistryEndpoint *e) {
        if (e->url)
                return strdup(e->url);
        const TailnetPeer *p = d->tn ? tailnet_status_find_peer(d->tn, e->peer) : NULL;
        if (!p || !p->ipv4)
                return NULL;
        return strdup_printf("%s://%s:%u", e->scheme ?: "http", p->ipv4, e->port);
}

static void start_probes(Doctor *d, NetRun *run, bool tcp, bool http) {
        static const unsigned ports[] = { 6443, 9443, 8132, 2380 };
        bool controller = k0s_role_is_controller(d->cfg->role);
        for (size_t i = 0; tcp && d->controllers[i]; i++)
                for (size_t j = 0; j < ELEMENTSOF(ports); j++)
                        if (ports[j] != 2380 || controller)
                                tcp_start(run, d->controllers[i], ports[j], port_name(ports[j]));
        for (size_t i = 0; http && i < d->cfg->n_registries; i++) {
                const Registry *r = &d->cfg->registries[i];
                for (size_t j = 0; j < r->n_endpoints; j++) {
                        _cleanup_free_ char *url = endpoint_url(d, &r->endpoints[j]);
                        if (url)
                                http_start(run, d, &r->endpoints[j], url, r->name);
                        else {
                                Probe *p = probe_new(
                                        run, r->name,
                                        strdup_printf("peer:%s", r->endpoints[j].peer ?: "?"));
                                if (p) {
                                        p->detail = strdup("the peer is not in LocalAPI /status");
                                        probe_finish(p, -ENXIO);
                                }
                        }
                }
        }
}

static void report_tcp(Doctor *d, const Probe *p) {
        _cleanup_free_ char *ev = strdup_printf("TCP connect %s (%s): %s", p->label, p->what,
                                                p->error == 0 ? "connected" : strerror(-p->error));
        if (p->error == 0) {
                doctor_report(d, "HA09", "control-plane", DOCTOR_OK, ev, NULL, "%s reachable at %s",
                              p->what, p->label);
                return;
        }
        bool hard = p->port == 6443 || p->port == 2380;
        doctor_report(d, "HA09", "control-plane", hard ? DOCTOR_ERROR : DOCTOR_WARNING, ev,
                      "check that k0s runs on that controller and that the tailnet ACLs allow "
                      "this port (tailscale ping <controller> shows the path)",
                      "%s port of controller %s does not answer", p->what, p->label);
}

static void report_http(Doctor *d, const Probe *p) {
        _cleanup_free_ char *ev = NULL;
        if (p->error == 0)
                ev = strdup_printf("GET %s: HTTP %ld", p->label, p->http_code);
        else
                ev = strdup_printf("GET %s: %s", p->label, p->detail ?: strerror(-p->error));
        if (p->error == 0)
                doctor_report(d, "CR05", "containerd", DOCTOR_OK, ev, NULL,
                              "registry %s answers at %s", p->what, p->label);
        else
                doctor_report(d, "CR05", "containerd", DOCTOR_WARNING, ev,
                              "start the registry or fix the endpoint in registries: of the "
                              "agent's config; pulls through this endpoint fail",
                              "registry %s endpoint %s does not answer", p->what, p->label);
}

static void net_run_free(NetRun *run) {
        for (size_t i = 0; i < run->n; i++) {
                Probe *p = &run->probes[i];
                p->io = sd_event_source_disable_unref(p->io);
                if (p->fd >= 0)
                        close(p->fd);
                if (p->easy) {
                        if (!p->done)
                                curl_glue_remove(run->glue, p->easy);
                        curl_easy_cleanup(p->easy);
                }
                curl_body_reset(&p->body);
                free(p->label);
                free(p->detail);
        }
        run->tcp_timer = sd_event_source_disable_unref(run->tcp_timer);
        run->end_timer = sd_event_source_disable_unref(run->end_timer);
        run->glue = curl_glue_free(run->glue);
        run->event = sd_event_unref(run->event);
}

void doctor_checks_net(Doctor *d) {
        bool tcp = doctor_wants(d, "HA09"), http = doctor_wants(d, "CR05");
        _cleanup_free_ NetRun *run = calloc(1, sizeof(NetRun));
        if (!run || sd_event_new(&run->event) < 0 || curl_glue_new(run->event, &run->glue) < 0) {
                if (run)
                        net_run_free(run);
                return;
        }
        if (tcp && !d->controllers[0])
                doctor_report(d, "HA09", "control-plane", DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: no controller address known (token file, kubelet "
                              "kubeconfig, k0s config)");
        if (http && d->cfg->n_registries == 0)
                doctor_report(d, "CR05", "containerd", DOCTOR_SKIPPED, NULL, NULL,
                              "skipped: no registries in the agent's config");
        start_probes(d, run, tcp, http);
        if (run->pending > 0 &&
            event_timer_arm(run->event, &run->tcp_timer, TCP_TIMEOUT_USEC, 1, false, on_tcp_timeout,
                            run, "doctor-tcp") >= 0 &&
            event_timer_arm(run->event, &run->end_timer,
                            (uint64_t) HTTP_TIMEOUT_MS * USEC_PER_MSEC + 500 * USEC_PER_MSEC, 1,
                            false, on_end, run, "doctor-end") >= 0)
                (void) sd_event_loop(run->event);
        for (size_t i = 0; i < run->n; i++) {
                Probe *p = &run->probes[i];
                if (!p->done) {
                        p->error = -ETIMEDOUT;
                        p->done = false;
                }
                if (p->easy || startswith(p->label, "peer:"))
                        report_http(d, p);
                else
                        report_tcp(d, p);
        }
        net_run_free(run);
}
