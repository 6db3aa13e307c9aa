/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary bytes as a LocalAPI /status body -> tailnet_status_parse(). */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tailnet-status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where string lengths go, so the compiler cannot drop the reads ASan should see. */
static volatile size_t sink;

static void check_addr(int family, const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];

        if (!s)
                return;
        if (inet_pton(family, s, buf) != 1)
                abort(); /* the parser promised a valid address of this family */
}

static void check_name(const char *s) {
        if (!s)
                return;
        if (*s == '\0' || s[strlen(s) - 1] == '.')
                abort(); /* empty means NULL; the trailing dot is dropped */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        TailnetStatus *s = NULL;

        if (tailnet_status_parse((const char *) data, size, &s) < 0)
                return 0;

        if (!backend_state_to_string(s->backend_state) || !s->health)
                abort();
        check_addr(AF_INET, s->ipv4);
        check_addr(AF_INET6, s->ipv6);
        check_name(s->dns_name);
        sink += s->version ? strlen(s->version) : 0;
        sink += s->auth_url ? strlen(s->auth_url) : 0;
        sink += s->host_name ? strlen(s->host_name) : 0;
        sink += s->magic_dns_suffix ? strlen(s->magic_dns_suffix) : 0;
        for (char **h = s->health; *h; h++)
                sink += strlen(*h);
        for (size_t i = 0; i < s->n_peers; i++) {
                const TailnetPeer *p = &s->peers[i];
                check_addr(AF_INET, p->ipv4);
                check_addr(AF_INET6, p->ipv6);
                check_name(p->dns_name);
                sink += p->host_name ? strlen(p->host_name) : 0;
                sink += p->online + p->active +
                        tailnet_peer_is_reachable(p, s->self_online, 1767225600000000);
                sink += p->cur_addr ? strlen(p->cur_addr) : 0;
                sink += p->relay ? strlen(p->relay) : 0;
                /* Every peer with a name is found by it (maybe another peer of the same name). */
                if (p->dns_name && !tailnet_status_find_peer(s, p->dns_name))
                        abort();
                if (p->host_name && !tailnet_status_find_peer(s, p->host_name))
                        abort();
        }

        tailnet_status_free(s);
        return 0;
}
