/* SPDX-License-Identifier: MIT */
/*
 * netwatch against the real kernel: every test enters a fresh network namespace and drives a
 * TUN device literally named tailscale0, either held open like tailscaled does (the link dies
 * with the fd) or persistent via `ip tuntap`. The final word on addresses is `ip -j addr`.
 * Needs root; skips (77) with a reason when namespaces or /dev/net/tun are unavailable.
 */

#include <check.h>
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/if.h>
#include <linux/if_tun.h>

#include "netwatch.h"

#define IFNAME "tailscale0"
#define WAIT_USEC (5 * USEC_PER_SEC)

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

static int safe_close(int fd) {
        if (fd >= 0)
                (void) close(fd);
        return -1;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* Runs the loop until cond holds or WAIT_USEC passed; evaluates to the final cond. The kernel
 * queues most notifications before `ip` returns, but operstate goes through the kernel's
 * linkwatch, which may delay it by up to a second. */
#define WAIT_UNTIL(e, cond) \
        ({ \
                uint64_t _deadline = now_usec() + WAIT_USEC; \
                bool _ok; \
                for (;;) { \
                        _ok = (cond); \
                        if (_ok || now_usec() >= _deadline) \
                                break; \
                        ck_assert_int_ge(sd_event_run((e), 100 * USEC_PER_MSEC), 0); \
                } \
                _ok; \
        })

/* Processes whatever is queued now, without waiting. */
static void flush(sd_event *e) {
        int r;

        do
                r = sd_event_run(e, 0);
        while (r > 0);
        ck_assert_int_ge(r, 0);
}

/* Lets asynchronous kernel work (linkwatch) happen, then processes it. */
static void settle(sd_event *e, uint64_t usec) {
        uint64_t deadline = now_usec() + usec;

        while (now_usec() < deadline)
                ck_assert_int_ge(sd_event_run(e, 50 * USEC_PER_MSEC), 0);
}

_printf_(1, 2) static void run(const char *fmt, ...) {
        _cleanup_free_ char *cmd = NULL;
        va_list ap;
        int r, status;

        va_start(ap, fmt);
        r = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        ck_assert_int_ge(r, 0);

        status = system(cmd);
        ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "'%s' failed (status %d)", cmd, status);
}

/* Like tailscaled: TUNSETIFF without TUNSETPERSIST, so closing the fd deletes the link. On an
 * existing persistent TUN it attaches instead (carrier on). */
static int tun_hold(const char *ifname) {
        struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI };
        int fd;

        fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
        ck_assert_msg(ioctl(fd, TUNSETIFF, &ifr) == 0, "TUNSETIFF %s: %s", ifname, strerror(errno));
        return fd;
}

static void enter_netns(void) {
        ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
}

static void on_change(Netwatch *nw, void *userdata) {
        unsigned *calls = userdata;

        (*calls)++;
}

static int compare_bytes(const void *a, const void *b) {
        return memcmp(a, b, 16);
}

typedef struct Expected {
        bool present;
        int ifindex;
        unsigned mtu;
        bool admin_up, lower_up;
        size_t n_ipv4, n_ipv6;
        char ipv4[NETWATCH_MAX_ADDRS][INET_ADDRSTRLEN];
        char ipv6[NETWATCH_MAX_ADDRS][INET6_ADDRSTRLEN];
} Expected;

/* Sorts binary addresses (16 bytes each, IPv4 in the first 4), drops duplicates, keeps the
 * first NETWATCH_MAX_ADDRS as text: netwatch's documented order. */
static size_t sorted_strings(uint8_t (*bin)[16], size_t n, int family, char *out, size_t width) {
        size_t k = 0;

        qsort(bin, n, 16, compare_bytes);
        for (size_t i = 0; i < n && k < NETWATCH_MAX_ADDRS; i++) {
                if (i > 0 && memcmp(bin[i], bin[i - 1], 16) == 0)
                        continue;
                ck_assert_ptr_nonnull(
                        inet_ntop(family, bin[i], out + k * width, (socklen_t) width));
                k++;
        }
        return k;
}

static bool json_flag(const cJSON *flags, const char *name) {
        const cJSON *f;

        cJSON_ArrayForEach(f,
                           flags) if (cJSON_IsString(f) && streq(f->valuestring, name)) return true;
        return false;
}

/* What `ip -j addr show dev IFNAME` says, in NetState's terms. */
static void expected_from_ip(Expected *x) {
        _cleanup_(cJSON_Deletep) cJSON *json = NULL;
        _cleanup_free_ uint8_t(*v4)[16] = NULL, (*v6)[16] = NULL;
        size_t n4 = 0, n6 = 0, size = 0, len = 0;
        _cleanup_free_ char *out = NULL;
        const cJSON *link, *ai;
        FILE *f;
        int status;

        *x = (Expected){};

        f = popen("ip -j addr show dev " IFNAME " 2>/dev/null", "r");
        ck_assert_ptr_nonnull(f);
        for (;;) {
                if (len + 4096 + 1 > size) {
                        size = (size + 4096) * 2;
                        out = realloc(out, size);
                        ck_assert_ptr_nonnull(out);
                }
                size_t k = fread(out + len, 1, size - len - 1, f);
                if (k == 0)
                        break;
                len += k;
        }
        status = pclose(f);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return; /* "Device does not exist" */
        ck_assert_ptr_nonnull(out);
        out[len] = '\0';

        json = cJSON_Parse(out);
        ck_assert_msg(cJSON_IsArray(json), "ip -j output: %s", out);
        link = cJSON_GetArrayItem(json, 0);
        ck_assert_ptr_nonnull(link);

        x->present = true;
        x->ifindex = cJSON_GetObjectItem(link, "ifindex")->valueint;
        x->mtu = (unsigned) cJSON_GetObjectItem(link, "mtu")->valueint;
        x->admin_up = json_flag(cJSON_GetObjectItem(link, "flags"), "UP");
        x->lower_up = json_flag(cJSON_GetObjectItem(link, "flags"), "LOWER_UP");

        ai = cJSON_GetObjectItem(link, "addr_info");
        v4 = calloc((size_t) cJSON_GetArraySize(ai) + 1, 16);
        v6 = calloc((size_t) cJSON_GetArraySize(ai) + 1, 16);
        ck_assert_ptr_nonnull(v4);
        ck_assert_ptr_nonnull(v6);

        const cJSON *a;
        cJSON_ArrayForEach(a, ai) {
                const char *family = cJSON_GetObjectItem(a, "family")->valuestring;
                const char *local = cJSON_GetObjectItem(a, "local")->valuestring;
                const char *scope = cJSON_GetObjectItem(a, "scope")->valuestring;

                if (streq(family, "inet"))
                        ck_assert_int_eq(inet_pton(AF_INET, local, v4[n4++]), 1);
                else if (streq(family, "inet6") && streq(scope, "global"))
                        ck_assert_int_eq(inet_pton(AF_INET6, local, v6[n6++]), 1);
        }

        x->n_ipv4 = sorted_strings(v4, n4, AF_INET, &x->ipv4[0][0], INET_ADDRSTRLEN);
        x->n_ipv6 = sorted_strings(v6, n6, AF_INET6, &x->ipv6[0][0], INET6_ADDRSTRLEN);
}

/* The state netwatch reports equals what the kernel reports through iproute2. */
static void assert_matches_ip(const NetState *s) {
        Expected x;

        expected_from_ip(&x);
        ck_assert_int_eq(s->present, x.present);
        if (!x.present) {
                ck_assert_int_eq(s->ifindex, 0);
                ck_assert_uint_eq(s->n_ipv4, 0);
                ck_assert_uint_eq(s->n_ipv6, 0);
                return;
        }
        ck_assert_int_eq(s->ifindex, x.ifindex);
        ck_assert_uint_eq(s->mtu, x.mtu);
        ck_assert_int_eq(s->admin_up, x.admin_up);
        ck_assert_int_eq(s->lower_up, x.lower_up);
        ck_assert_uint_eq(s->n_ipv4, x.n_ipv4);
        for (size_t i = 0; i < x.n_ipv4; i++)
                ck_assert_str_eq(s->ipv4[i], x.ipv4[i]);
        ck_assert_uint_eq(s->n_ipv6, x.n_ipv6);
        for (size_t i = 0; i < x.n_ipv6; i++)
                ck_assert_str_eq(s->ipv6[i], x.ipv6[i]);
}

START_TEST(test_tailscaled_lifecycle) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(netwatch_freep) Netwatch *nw = NULL;
        _cleanup_close_ int fd = -1;
        const NetState *s;
        unsigned calls = 0, calls_before;
        int old_ifindex;

        enter_netns();
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(netwatch_new(IFNAME, on_change, &calls, &nw), 0);
        ck_assert_int_eq(netwatch_attach(nw, e), 0);
        ck_assert_int_eq(netwatch_attach(nw, e), -EBUSY);
        s = netwatch_get_state(nw);

        /* Absent at start. */
        ck_assert(!s->present);
        ck_assert_int_eq(s->ifindex, 0);
        ck_assert(!s->up);

        /* tailscaled starts: the TUN appears, still down. */
        fd = tun_hold(IFNAME);
        ck_assert(WAIT_UNTIL(e, s->present));
        ck_assert_uint_gt(calls, 0);
        ck_assert_int_eq(s->ifindex, (int) if_nametoindex(IFNAME));
        ck_assert(!s->admin_up);
        ck_assert(!s->up);
        ck_assert_uint_eq(s->n_recreated, 0);

        run("ip link set " IFNAME " mtu 1280");
        ck_assert(WAIT_UNTIL(e, s->mtu == 1280));

        /* Up: a live TUN is operstate UNKNOWN with LOWER_UP, and that is up. */
        run("ip link set " IFNAME " up");
        ck_assert(WAIT_UNTIL(e, s->up));
        ck_assert(s->admin_up);
        ck_assert(s->lower_up);
        ck_assert_uint_eq(s->operstate, IF_OPER_UNKNOWN);

        run("ip addr add 100.64.1.2/32 dev " IFNAME);
        ck_assert(WAIT_UNTIL(e, s->n_ipv4 == 1));
        ck_assert_str_eq(s->ipv4[0], "100.64.1.2");

        run("ip addr add fd7a:115c:a1e0::1/128 dev " IFNAME " nodad");
        ck_assert(WAIT_UNTIL(e, s->n_ipv6 == 1));
        ck_assert_str_eq(s->ipv6[0], "fd7a:115c:a1e0::1");

        /* The kernel's fe80:: address is there, but is not ours to report. */
        settle(e, 200 * USEC_PER_MSEC);
        ck_assert_uint_eq(s->n_ipv6, 1);
        assert_matches_ip(s);

        /* One address with two prefix lengths is one address; it stays until both go. */
        run("ip addr add 100.64.1.2/24 dev " IFNAME);
        run("ip addr add 100.64.0.9/32 dev " IFNAME);
        ck_assert(WAIT_UNTIL(e, s->n_ipv4 == 2));
        ck_assert_str_eq(s->ipv4[0], "100.64.0.9"); /* numeric order */
        ck_assert_str_eq(s->ipv4[1], "100.64.1.2");
        run("ip addr del 100.64.1.2/32 dev " IFNAME);
        run("ip addr del 100.64.0.9/32 dev " IFNAME);
        ck_assert(WAIT_UNTIL(e, s->n_ipv4 == 1));
        settle(e, 100 * USEC_PER_MSEC);
        ck_assert_uint_eq(s->n_ipv4, 1);
        ck_assert_str_eq(s->ipv4[0], "100.64.1.2");
        run("ip addr del 100.64.1.2/24 dev " IFNAME);
        ck_assert(WAIT_UNTIL(e, s->n_ipv4 == 0));
        run("ip addr add 100.64.1.2/32 dev " IFNAME);
        ck_assert(WAIT_UNTIL(e, s->n_ipv4 == 1));
        assert_matches_ip(s);

        /* tailscaled exits: the kernel deletes the link, addresses go with it. */
        old_ifindex = s->ifindex;
        fd = safe_close(fd);
        ck_assert(WAIT_UNTIL(e, !s->present));
        ck_assert_int_eq(s->ifindex, 0);
        ck_assert(!s->up);
        ck_assert_uint_eq(s->n_ipv4, 0);
        ck_assert_uint_eq(s->n_ipv6, 0);
        ck_assert_uint_eq(s->n_recreated, 0);
        assert_matches_ip(s);

        /* tailscaled starts again: a new ifindex, counted as a recreation. */
        calls_before = calls;
        fd = tun_hold(IFNAME);
        ck_assert(WAIT_UNTIL(e, s->present));
        ck_assert_uint_gt(calls, calls_before);
        ck_assert_int_ne(s->ifindex, old_ifindex);
        ck_assert_int_eq(s->ifindex, (int) if_nametoindex(IFNAME));
        ck_assert_uint_eq(s->n_recreated, 1);
        ck_assert_uint_eq(s->n_ipv4, 0);
        ck_assert(!s->up);
        run("ip link set " IFNAME " up");
        run("ip addr add 100.64.7.7/32 dev " IFNAME);
        ck_assert(WAIT_UNTIL(e, s->up && s->n_ipv4 == 1));
        ck_assert_str_eq(s->ipv4[0], "100.64.7.7");
        assert_matches_ip(s);

        /* Nothing of this was a lost message. */
        ck_assert_uint_eq(netwatch_get_resyncs(nw), 0);
}
END_TEST

START_TEST(test_persistent_tun_without_process) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(netwatch_freep) Netwatch *nw = NULL;
        _cleanup_close_ int fd = -1;
        const NetState *s;
        unsigned calls = 0;

        enter_netns();
        run("ip tuntap add dev " IFNAME " mode tun");

        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(netwatch_new(IFNAME, on_change, &calls, &nw), 0);
        ck_assert_int_eq(netwatch_attach(nw, e), 0);
        s = netwatch_get_state(nw);

        /* The initial dump found it without any event. */
        ck_assert(s->present);
        ck_assert_int_eq(s->ifindex, (int) if_nametoindex(IFNAME));
        ck_assert(!s->admin_up);
        ck_assert_uint_eq(calls, 0);

        /* Up with nobody attached: NO-CARRIER, operstate DOWN: not up. */
        run("ip link set " IFNAME " up");
        ck_assert(WAIT_UNTIL(e, s->admin_up));
        settle(e, 300 * USEC_PER_MSEC);
        ck_assert(s->admin_up);
        ck_assert(!s->lower_up);
        ck_assert_uint_eq(s->operstate, IF_OPER_DOWN);
        ck_assert(!s->up);

        /* Addresses are facts even on a dead link. */
        run("ip addr add 100.64.1.2/32 dev " IFNAME);
        ck_assert(WAIT_UNTIL(e, s->n_ipv4 == 1));
        ck_assert(!s->up);
        assert_matches_ip(s);

        /* A process attaches: carrier, operstate UP. */
        fd = tun_hold(IFNAME);
        ck_assert(WAIT_UNTIL(e, s->up));
        ck_assert_uint_eq(s->operstate, IF_OPER_UP);
        ck_assert(s->lower_up);

        /* It goes away: the persistent link stays, but is no longer up. */
        fd = safe_close(fd);
        ck_assert(WAIT_UNTIL(e, !s->up));
        ck_assert(s->present);
        ck_assert_uint_eq(s->n_ipv4, 1);
        ck_assert_uint_eq(s->n_recreated, 0);
        assert_matches_ip(s);

        run("ip link del " IFNAME);
        ck_assert(WAIT_UNTIL(e, !s->present));
        ck_assert_uint_eq(s->n_ipv4, 0);
}
END_TEST

START_TEST(test_initial_dump) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(netwatch_freep) Netwatch *nw = NULL;
        _cleanup_close_ int fd = -1;
        const NetState *s;

        enter_netns();
        fd = tun_hold(IFNAME);
        run("ip link set " IFNAME " up");
        run("ip addr add 100.64.3.4/32 dev " IFNAME);
        run("ip addr add 10.1.2.3/24 dev " IFNAME);
        run("ip addr add fd7a:115c:a1e0::3:4/128 dev " IFNAME " nodad");
        run("ip addr add fd7a:115c:a1e0::1:2/128 dev " IFNAME " nodad");
        run("ip addr add fe80::1234/64 dev " IFNAME " nodad");

        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(netwatch_new(IFNAME, NULL, NULL, &nw), 0);
        ck_assert_int_eq(netwatch_attach(nw, e), 0);
        s = netwatch_get_state(nw);

        /* Right after attach, before the loop ever ran. */
        ck_assert(s->present);
        ck_assert(s->admin_up);
        ck_assert_uint_eq(s->n_ipv4, 2);
        ck_assert_str_eq(s->ipv4[0], "10.1.2.3");
        ck_assert_str_eq(s->ipv4[1], "100.64.3.4");
        ck_assert_uint_eq(s->n_ipv6, 2);
        ck_assert_str_eq(s->ipv6[0], "fd7a:115c:a1e0::1:2");
        ck_assert_str_eq(s->ipv6[1], "fd7a:115c:a1e0::3:4");

        /* The operstate may still be in the kernel's linkwatch queue; wait, then compare all. */
        ck_assert(WAIT_UNTIL(e, s->up));
        assert_matches_ip(s);
}
END_TEST

START_TEST(test_rename_and_set_ifname) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(netwatch_freep) Netwatch *nw = NULL;
        _cleanup_close_ int fd = -1, fd1 = -1;
        const NetState *s;
        int ifindex;

        enter_netns();
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(netwatch_new(IFNAME, NULL, NULL, &nw), 0);
        ck_assert_int_eq(netwatch_attach(nw, e), 0);
        s = netwatch_get_state(nw);

        fd = tun_hold(IFNAME);
        run("ip addr add 100.64.1.2/32 dev " IFNAME);
        run("ip addr add fd7a:115c:a1e0::5/128 dev " IFNAME " nodad");
        ck_assert(WAIT_UNTIL(e, s->n_ipv4 == 1 && s->n_ipv6 == 1));
        ifindex = s->ifindex;

        /* Renamed away: gone for us. */
        run("ip link set " IFNAME " name ts-old");
        ck_assert(WAIT_UNTIL(e, !s->present));
        ck_assert_uint_eq(s->n_ipv4, 0);

        ck_assert_uint_eq(s->n_ipv6, 0);

        /* Renamed back: present again, with its addresses. The kernel re-announces the IPv4
         * ones (label change) but not the IPv6 one: netwatch must ask. */
        run("ip link set ts-old name " IFNAME);
        ck_assert(WAIT_UNTIL(e, s->present));
        settle(e, 100 * USEC_PER_MSEC);
        ck_assert_int_eq(s->ifindex, ifindex);
        ck_assert_uint_eq(s->n_recreated, 0);
        ck_assert_uint_eq(s->n_ipv4, 1);
        ck_assert_str_eq(s->ipv4[0], "100.64.1.2");
        ck_assert_uint_eq(s->n_ipv6, 1);
        ck_assert_str_eq(s->ipv6[0], "fd7a:115c:a1e0::5");
        assert_matches_ip(s);

        /* Config reload to another interface name. */
        fd1 = tun_hold("ts1");
        run("ip addr add 100.64.9.9/32 dev ts1");
        flush(e);
        ck_assert_int_eq(netwatch_set_ifname(nw, "ts1"), 1);
        ck_assert(s->present);
        ck_assert_int_eq(s->ifindex, (int) if_nametoindex("ts1"));
        ck_assert_uint_eq(s->n_ipv4, 1);
        ck_assert_str_eq(s->ipv4[0], "100.64.9.9");
        ck_assert_uint_eq(s->n_recreated, 0);
        ck_assert_int_eq(netwatch_set_ifname(nw, "ts1"), 0);

        /* Events of the old name no longer matter. */
        run("ip addr add 100.64.1.3/32 dev " IFNAME);
        settle(e, 100 * USEC_PER_MSEC);
        ck_assert_uint_eq(s->n_ipv4, 1);

        ck_assert_int_eq(netwatch_set_ifname(nw, "nonexistent"), 1);
        ck_assert(!s->present);
}
END_TEST

START_TEST(test_coalesced_handler) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(netwatch_freep) Netwatch *nw = NULL;
        _cleanup_close_ int fd = -1;
        const NetState *s;
        unsigned calls = 0;
        FILE *f;

        enter_netns();
        fd = tun_hold(IFNAME);
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(netwatch_new(IFNAME, on_change, &calls, &nw), 0);
        ck_assert_int_eq(netwatch_attach(nw, e), 0);
        s = netwatch_get_state(nw);

        /* Ten changes queued before the loop runs: one wakeup, one handler call. */
        f = popen("ip -batch -", "w");
        ck_assert_ptr_nonnull(f);
        for (int i = 1; i <= 10; i++)
                fprintf(f, "address add 100.64.2.%d/32 dev %s\n", i, IFNAME);
        ck_assert_int_eq(pclose(f), 0);

        ck_assert_int_eq(sd_event_run(e, 2 * USEC_PER_SEC), 1);
        ck_assert_uint_eq(s->n_ipv4, 10);
        ck_assert_uint_eq(calls, 1);

        /* A change elsewhere calls nobody. */
        run("ip addr add 100.64.2.1/32 dev lo");
        settle(e, 100 * USEC_PER_MSEC);
        ck_assert_uint_eq(calls, 1);
        assert_matches_ip(s);
}
END_TEST

/* 2,000 adds and most of them deleted again, all queued while the loop sleeps. */
static void address_burst(void) {
        FILE *f;

        f = popen("ip -batch -", "w");
        ck_assert_ptr_nonnull(f);
        for (int i = 0; i < 2000; i++)
                fprintf(f, "address add 100.64.%d.%d/32 dev %s\n", 10 + i / 250, 1 + i % 250,
                        IFNAME);
        for (int i = 0; i < 2000; i++)
                if (i % 250 != 7)
                        fprintf(f, "address del 100.64.%d.%d/32 dev %s\n", 10 + i / 250,
                                1 + i % 250, IFNAME);
        for (int i = 1; i <= 3; i++)
                fprintf(f, "address add fd7a:115c:a1e0::%x/128 dev %s nodad\n", i, IFNAME);
        ck_assert_int_eq(pclose(f), 0);
}

START_TEST(test_enobufs_resync) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(netwatch_freep) Netwatch *nw = NULL;
        _cleanup_close_ int fd = -1;
        const NetState *s;
        unsigned calls = 0;

        enter_netns();
        fd = tun_hold(IFNAME);
        run("ip link set " IFNAME " up");
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(netwatch_new(IFNAME, on_change, &calls, &nw), 0);
        ck_assert_int_eq(netwatch_attach(nw, e), 0);
        s = netwatch_get_state(nw);

        /* The kernel's minimum receive buffer holds a handful of messages: overrun for sure. */
        ck_assert_int_eq(netwatch_set_rcvbuf(nw, 1), 0);
        address_burst();
        flush(e);
        settle(e, 200 * USEC_PER_MSEC);

        ck_assert_uint_ge(netwatch_get_resyncs(nw), 1);
        ck_assert_uint_eq(s->n_ipv4, 8);
        ck_assert_uint_eq(s->n_ipv6, 3);
        assert_matches_ip(s);
        ck_assert_uint_gt(calls, 0);

        /* Events after the resync still work. */
        run("ip addr del 100.64.10.8/32 dev " IFNAME);
        ck_assert(WAIT_UNTIL(e, s->n_ipv4 == 7));
        assert_matches_ip(s);
}
END_TEST

START_TEST(test_burst_default_buffer) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(netwatch_freep) Netwatch *nw = NULL;
        _cleanup_close_ int fd = -1;
        const NetState *s;

        enter_netns();
        fd = tun_hold(IFNAME);
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(netwatch_new(IFNAME, NULL, NULL, &nw), 0);
        ck_assert_int_eq(netwatch_attach(nw, e), 0);
        s = netwatch_get_state(nw);

        /* With 1 MiB a resync may or may not be needed; the end state must be exact. */
        address_burst();
        flush(e);
        settle(e, 200 * USEC_PER_MSEC);
        ck_assert_uint_eq(s->n_ipv4, 8);
        ck_assert_uint_eq(s->n_ipv6, 3);
        assert_matches_ip(s);
        printf("burst with the default buffer: %" PRIu64 " resync(s)\n", netwatch_get_resyncs(nw));
}
END_TEST

START_TEST(test_more_than_max_addrs) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(netwatch_freep) Netwatch *nw = NULL;
        _cleanup_close_ int fd = -1;
        const NetState *s;
        FILE *f;

        enter_netns();
        fd = tun_hold(IFNAME);
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(netwatch_new(IFNAME, NULL, NULL, &nw), 0);
        ck_assert_int_eq(netwatch_attach(nw, e), 0);
        s = netwatch_get_state(nw);

        f = popen("ip -batch -", "w");
        ck_assert_ptr_nonnull(f);
        for (int i = 1; i <= NETWATCH_MAX_ADDRS + 4; i++)
                fprintf(f, "address add 100.64.4.%d/32 dev %s\n", i, IFNAME);
        ck_assert_int_eq(pclose(f), 0);
        flush(e);

        /* The first NETWATCH_MAX_ADDRS in order; the rest ignored. */
        ck_assert_uint_eq(s->n_ipv4, NETWATCH_MAX_ADDRS);
        ck_assert_str_eq(s->ipv4[0], "100.64.4.1");
        ck_assert_str_eq(s->ipv4[NETWATCH_MAX_ADDRS - 1], "100.64.4.16");
        assert_matches_ip(s);

        /* Deleting a listed one lets the next one in. */
        run("ip addr del 100.64.4.1/32 dev " IFNAME);
        ck_assert(WAIT_UNTIL(e, streq(s->ipv4[NETWATCH_MAX_ADDRS - 1], "100.64.4.17")));
        assert_matches_ip(s);
}
END_TEST

static Suite *netwatch_suite(void) {
        Suite *s = suite_create("netwatch");
        TCase *tc = tcase_create("netns");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_tailscaled_lifecycle);
        tcase_add_test(tc, test_persistent_tun_without_process);
        tcase_add_test(tc, test_initial_dump);
        tcase_add_test(tc, test_rename_and_set_ifname);
        tcase_add_test(tc, test_coalesced_handler);
        tcase_add_test(tc, test_enobufs_resync);
        tcase_add_test(tc, test_burst_default_buffer);
        tcase_add_test(tc, test_more_than_max_addrs);
        suite_add_tcase(s, tc);
        return s;
}

/* Runs in a child so the probe namespace dies with it. 0: usable; else the reason to skip. */
static const char *probe(void) {
        pid_t pid;
        int status;

        if (geteuid() != 0)
                return "needs root (network namespaces, /dev/net/tun)";

        pid = fork();
        if (pid < 0)
                return "fork() failed";
        if (pid == 0) {
                int fd;

                if (unshare(CLONE_NEWNET) < 0)
                        _exit(errno == EPERM ? 10 : 11);
                fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        _exit(12);
                close(fd);
                if (system("ip -V >/dev/null 2>&1") != 0)
                        _exit(13);
                _exit(0);
        }
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
                return "probe child died";
        switch (WEXITSTATUS(status)) {
        case 0:
                return NULL;
        case 10:
                return "unshare(CLONE_NEWNET): permission denied";
        case 11:
                return "unshare(CLONE_NEWNET) failed";
        case 12:
                return "cannot open /dev/net/tun";
        case 13:
                return "iproute2 'ip' not found";
        }
        return "probe failed";
}

int main(void) {
        const char *skip = probe();
        SRunner *sr;
        int failed;

        if (skip) {
                printf("SKIP: %s\n", skip);
                return 77;
        }

        sr = srunner_create(netwatch_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
