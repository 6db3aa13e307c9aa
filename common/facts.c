/* SPDX-License-Identifier: MIT */
/*
 * Owns the pure predicates over node facts (tailnet address ranges, binary identity) and the
 * K0sSpec destructor. Gathers no fact itself: the watchers in agent/ do.
 */

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "facts.h"
#include "util.h"

void k0s_spec_done(K0sSpec *s) {
        if (!s)
                return;
        s->argv = strv_free(s->argv);
        s->env = strv_free(s->env);
        free(s->hash);
        s->hash = NULL;
}

bool binary_id_equal(const BinaryId *a, const BinaryId *b) {
        return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
                a->mtime_nsec == b->mtime_nsec;
}

static const char *const clock_fact_table[_CLOCK_FACT_MAX] = {
        [CLOCK_FACT_SYNCED] = "synchronized",
        [CLOCK_FACT_NOT_NEEDED] = "not-needed",
        [CLOCK_FACT_WAITING] = "waiting",
        [CLOCK_FACT_TIMED_OUT] = "timed-out",
};

const char *clock_fact_to_string(ClockFact c) {
        if (c < 0 || c >= _CLOCK_FACT_MAX)
                return NULL;
        return clock_fact_table[c];
}

bool address_is_tailnet_ipv4(const char *a) {
        struct in_addr in;
        uint32_t h;

        if (!a || inet_pton(AF_INET, a, &in) != 1)
                return false;

        h = ntohl(in.s_addr);
        /* tsaddr.ChromeOSVMRange, 100.115.92.0/23, is carved out of the CGNAT range. */
        if ((h & 0xfffffe00u) == 0x64735c00u)
                return false;
        /* tsaddr.CGNATRange, 100.64.0.0/10. */
        return (h & 0xffc00000u) == 0x64400000u;
}

bool address_is_tailnet_ipv6(const char *a) {
        static const uint8_t prefix[6] = { 0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0 };
        struct in6_addr in;

        if (!a || inet_pton(AF_INET6, a, &in) != 1)
                return false;
        return memcmp(in.s6_addr, prefix, sizeof(prefix)) == 0;
}
