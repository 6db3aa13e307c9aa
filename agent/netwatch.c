/* SPDX-License-Identifier: MIT */
/*
 * netwatch: the kernel's view of one interface, by name, from rtnetlink. Owns an event socket
 * (link + IPv4/IPv6 address groups) on the sd-event loop and a short-lived dump socket for the
 * initial state and for resyncs after ENOBUFS. Produces a NetState and calls the handler once
 * per wakeup that changed it. Does not decide what the state means for k0s (reconcile does).
 */

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
/* after <net/if.h>: linux/if.h then adds only what glibc lacks (IFF_LOWER_UP, IF_OPER_*) */
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/socket.h>
#include <netlink/route/rtnl.h>
#include <netlink/route/link.h>

#include "macro.h"
#include "log.h"
#include "netwatch.h"

/* Big enough to absorb the burst of a tailscaled restart on a busy host; overruns still can
 * happen (that is what the ENOBUFS resync is for). Root may exceed net.core.rmem_max. */
#define NETWATCH_RCVBUF_DEFAULT (1024 * 1024)
/* One datagram from the kernel; rtnetlink notifications are far smaller. A bigger one is
 * reported as truncated and answered with a resync. */
#define NETWATCH_RECV_BUF_SIZE (32 * 1024)
/* Datagrams read per wakeup, so a netlink storm cannot starve the rest of the loop; epoll is
 * level-triggered and wakes us again. */
#define NETWATCH_RECV_BATCH 256

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_msg *, nlmsg_free);

typedef struct Addr {
        int family; /* AF_INET, AF_INET6 */
        uint8_t bytes[16]; /* network order; IPv4 in the first 4, rest zero */
        uint8_t prefixlen;
        uint8_t scope; /* RT_SCOPE_* */
} Addr;

/* Everything learned from netlink about our link. Kept apart from Netwatch so a resync can
 * build a fresh one and swap it in only when the dump succeeded. */
typedef struct Tracker {
        bool present;
        int ifindex; /* 0 when absent */
        int last_ifindex; /* last non-zero ifindex of our name, survives deletion */
        unsigned flags; /* ifi_flags */
        uint8_t operstate;
        unsigned mtu;
        Addr *addrs; /* every address of the link, sorted by addr_compare() */
        size_t n_addrs, n_allocated;
        uint64_t n_recreated;
        bool addrs_unknown; /* a link became ours that may already have addresses */
} Tracker;

struct Netwatch {
        char ifname[IFNAMSIZ];
        NetwatchHandler handler;
        void *userdata;

        struct nl_sock *sk; /* event socket: RTNLGRP_LINK, _IPV4_IFADDR, _IPV6_IFADDR */
        sd_event_source *io; /* EPOLLIN on sk */
        uint8_t *buf; /* NETWATCH_RECV_BUF_SIZE, for recv() on sk */
        int rcvbuf; /* requested SO_RCVBUF */

        Tracker tracker;
        NetState state; /* derived from tracker after each batch */
        uint64_t n_resyncs; /* resyncs forced by lost messages */
        bool need_resync; /* a resync failed; retried on the next wakeup */
};

static int nlerr_to_errno(int nlerr) {
        switch (abs(nlerr)) {
        case NLE_NOMEM:
                return -ENOMEM;
        case NLE_PERM:
        case NLE_NOACCESS:
                return -EPERM;
        case NLE_AGAIN:
                return -EAGAIN;
        case NLE_INVAL:
                return -EINVAL;
        case NLE_BAD_SOCK:
                return -EBADF;
        case NLE_AF_NOSUPPORT:
        case NLE_OPNOTSUPP:
                return -EOPNOTSUPP;
        }
        return -EIO;
}

static int addr_compare(const Addr *a, const Addr *b) {
        int r;

        if (a->family != b->family)
                return a->family < b->family ? -1 : 1;
        r = memcmp(a->bytes, b->bytes, sizeof(a->bytes));
        if (r != 0)
                return r;
        if (a->prefixlen != b->prefixlen)
                return a->prefixlen < b->prefixlen ? -1 : 1;
        return 0;
}

/* Index of a, or of where it would be inserted; *found says which. */
static size_t tracker_find_addr(const Tracker *t, const Addr *a, bool *found) {
        size_t lo = 0, hi = t->n_addrs;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int r = addr_compare(&t->addrs[mid], a);

                if (r == 0) {
                        *found = true;
                        return mid;
                }
                if (r < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

static int tracker_add_addr(Tracker *t, const Addr *a) {
        bool found;
        size_t i = tracker_find_addr(t, a, &found);

        if (found) {
                t->addrs[i].scope = a->scope; /* RTM_NEWADDR also reports changes */
                return 0;
        }

        if (t->n_addrs == t->n_allocated) {
                size_t n = MAX(t->n_allocated * 2, (size_t) 8);
                Addr *p = reallocarray(t->addrs, n, sizeof(Addr));
                if (!p)
                        return -ENOMEM;
                t->addrs = p;
                t->n_allocated = n;
        }

        memmove(t->addrs + i + 1, t->addrs + i, (t->n_addrs - i) * sizeof(Addr));
        t->addrs[i] = *a;
        t->n_addrs++;
        return 1;
}

static void tracker_remove_addr(Tracker *t, const Addr *a) {
        bool found;
        size_t i = tracker_find_addr(t, a, &found);

        if (!found)
                return;
        memmove(t->addrs + i, t->addrs + i + 1, (t->n_addrs - i - 1) * sizeof(Addr));
        t->n_addrs--;
}

static void tracker_link_gone(Tracker *t) {
        t->present = false;
        t->ifindex = 0;
        t->flags = 0;
        t->operstate = IF_OPER_UNKNOWN;
        t->mtu = 0;
        t->n_addrs = 0; /* they belonged to the link */
}

static void tracker_done(Tracker *t) {
        free(t->addrs);
        *t = (Tracker){ .operstate = IF_OPER_UNKNOWN };
}

static const struct nla_policy link_policy[IFLA_MAX + 1] = {
        [IFLA_IFNAME] = { .type = NLA_STRING, .maxlen = IFNAMSIZ },
        [IFLA_MTU] = { .type = NLA_U32 },
        [IFLA_OPERSTATE] = { .type = NLA_U8 },
};

static void tracker_apply_link(Tracker *t, const char *ifname, struct nlmsghdr *nlh) {
        struct nlattr *tb[IFLA_MAX + 1];
        const struct ifinfomsg *ifi;
        bool ours_by_name, ours_by_index;

        if (nlmsg_parse(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX, link_policy) < 0)
                return;

        ifi = nlmsg_data(nlh);
        /* AF_BRIDGE RTM_NEWLINK/DELLINK are bridge-port notifications, not the link itself. */
        if (ifi->ifi_family != AF_UNSPEC || ifi->ifi_index <= 0)
                return;

        ours_by_name = tb[IFLA_IFNAME] && streq(nla_get_string(tb[IFLA_IFNAME]), ifname);
        ours_by_index = t->present && ifi->ifi_index == t->ifindex;

        if (nlh->nlmsg_type == RTM_DELLINK) {
                if (ours_by_index)
                        tracker_link_gone(t);
                return;
        }

        if (!ours_by_name) {
                /* Our link renamed away: for us the interface is gone. */
                if (ours_by_index)
                        tracker_link_gone(t);
                return;
        }

        if (ifi->ifi_index != t->ifindex) {
                /* tailscaled's TUN dies with the process and comes back with a new index;
                 * whatever addresses we knew belonged to the old one. A link renamed to our
                 * name brings addresses no event will tell us about: ask for them. */
                t->n_addrs = 0;
                t->addrs_unknown = true;
                if (t->last_ifindex != 0 && ifi->ifi_index != t->last_ifindex)
                        t->n_recreated++;
        }

        t->present = true;
        t->ifindex = t->last_ifindex = ifi->ifi_index;
        t->flags = ifi->ifi_flags;
        /* No IFLA_OPERSTATE means a driver that does not report it: RFC 2863 "unknown". */
        t->operstate = tb[IFLA_OPERSTATE] ? nla_get_u8(tb[IFLA_OPERSTATE]) : IF_OPER_UNKNOWN;
        if (tb[IFLA_MTU])
                t->mtu = nla_get_u32(tb[IFLA_MTU]);
}

static const struct nla_policy addr_policy[IFA_MAX + 1] = {
        [IFA_FLAGS] = { .type = NLA_U32 },
};

static int tracker_apply_addr(Tracker *t, struct nlmsghdr *nlh) {
        struct nlattr *tb[IFA_MAX + 1], *local;
        const struct ifaddrmsg *ifa;
        Addr a = {};
        size_t len;

        if (nlmsg_parse(nlh, sizeof(struct ifaddrmsg), tb, IFA_MAX, addr_policy) < 0)
                return 0;

        ifa = nlmsg_data(nlh);
        if (!t->present || (int) ifa->ifa_index != t->ifindex)
                return 0;

        switch (ifa->ifa_family) {
        case AF_INET:
                len = 4;
                break;
        case AF_INET6:
                len = 16;
                break;
        default:
                return 0;
        }

        /* IFA_LOCAL is our side; IFA_ADDRESS is the peer on point-to-point links and the only
         * attribute for plain IPv6 addresses (the same rule as iproute2). */
        local = tb[IFA_LOCAL] ?: tb[IFA_ADDRESS];
        if (!local || (size_t) nla_len(local) != len)
                return 0;

        a.family = ifa->ifa_family;
        memcpy(a.bytes, nla_data(local), len);
        a.prefixlen = ifa->ifa_prefixlen;
        a.scope = ifa->ifa_scope;

        if (nlh->nlmsg_type == RTM_NEWADDR)
                return tracker_add_addr(t, &a);

        tracker_remove_addr(t, &a);
        return 0;
}

/* Applies one rtnetlink message, from the event socket or from a dump. -ENOMEM means the
 * tracker missed an address and needs a resync. */
static int tracker_apply(Tracker *t, const char *ifname, struct nlmsghdr *nlh) {
        switch (nlh->nlmsg_type) {
        case RTM_NEWLINK:
        case RTM_DELLINK:
                tracker_apply_link(t, ifname, nlh);
                return 0;
        case RTM_NEWADDR:
        case RTM_DELADDR:
                return tracker_apply_addr(t, nlh);
        default:
                return 0; /* NLMSG_DONE, NLMSG_NOOP, and whatever else a group brings */
        }
}

static bool addr_is_global_ipv6(const Addr *a) {
        /* fe80::/10 is link-local whatever scope the message claims. */
        if (a->bytes[0] == 0xfe && (a->bytes[1] & 0xc0) == 0x80)
                return false;
        return a->scope == RT_SCOPE_UNIVERSE;
}

static void tracker_to_state(const Tracker *t, NetState *s) {
        *s = (NetState){
                .present = t->present,
                .ifindex = t->ifindex,
                .admin_up = t->flags & IFF_UP,
                .lower_up = t->flags & IFF_LOWER_UP,
                .operstate = t->operstate,
                .mtu = t->mtu,
                .n_recreated = t->n_recreated,
        };
        /* RFC 2863: a live TUN says "unknown" with carrier; a TUN without its process says
         * "down" (NO-CARRIER). Only the first carries traffic. */
        s->up = s->admin_up &&
                (s->operstate == IF_OPER_UP || (s->operstate == IF_OPER_UNKNOWN && s->lower_up));

        for (size_t i = 0; i < t->n_addrs; i++) {
                const Addr *a = &t->addrs[i];

                /* Sorted by address first: the same address with another prefix length sits
                 * right behind, and is one address to our users. */
                if (i > 0 && a->family == a[-1].family &&
                    memcmp(a->bytes, a[-1].bytes, sizeof(a->bytes)) == 0)
                        continue;

                if (a->family == AF_INET) {
                        if (s->n_ipv4 < NETWATCH_MAX_ADDRS)
                                (void) inet_ntop(AF_INET, a->bytes, s->ipv4[s->n_ipv4++],
                                                 INET_ADDRSTRLEN);
                } else if (addr_is_global_ipv6(a)) {
                        if (s->n_ipv6 < NETWATCH_MAX_ADDRS)
                                (void) inet_ntop(AF_INET6, a->bytes, s->ipv6[s->n_ipv6++],
                                                 INET6_ADDRSTRLEN);
                }
        }
}

static bool netstate_equal(const NetState *a, const NetState *b) {
        if (a->present != b->present || a->ifindex != b->ifindex || a->admin_up != b->admin_up ||
            a->lower_up != b->lower_up || a->operstate != b->operstate || a->up != b->up ||
            a->mtu != b->mtu || a->n_recreated != b->n_recreated || a->n_ipv4 != b->n_ipv4 ||
            a->n_ipv6 != b->n_ipv6)
                return false;

        for (size_t i = 0; i < a->n_ipv4; i++)
                if (!streq(a->ipv4[i], b->ipv4[i]))
                        return false;
        for (size_t i = 0; i < a->n_ipv6; i++)
                if (!streq(a->ipv6[i], b->ipv6[i]))
                        return false;
        return true;
}

static int socket_set_rcvbuf(int fd, int bytes) {
        /* SO_RCVBUFFORCE (CAP_NET_ADMIN) may exceed net.core.rmem_max; without the
         * capability SO_RCVBUF gives what the sysctl allows. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) >= 0)
                return 0;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) < 0)
                return -errno;
        return 0;
}

typedef struct DumpContext {
        Tracker *tracker;
        const char *ifname;
        int error;
} DumpContext;

static int on_dump_message(struct nl_msg *msg, void *userdata) {
        DumpContext *c = userdata;
        int r;

        r = tracker_apply(c->tracker, c->ifname, nlmsg_hdr(msg));
        if (r < 0 && c->error == 0)
                c->error = r;
        return NL_OK;
}

/* Fills an empty tracker from RTM_GETLINK (by name) and an RTM_GETADDR dump, on a socket of
 * its own so no dump reply can mix with the events. */
static int netwatch_dump(const char *ifname, Tracker *t) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        _cleanup_(nlmsg_freep) struct nl_msg *req = NULL;
        DumpContext c = { .tracker = t, .ifname = ifname };
        int r;

        sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;

        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0)
                return nlerr_to_errno(r);
        /* libnl >= 3.2.29 opens with SOCK_CLOEXEC; older ones do not. */
        if (fcntl(nl_socket_get_fd(sk), F_SETFD, FD_CLOEXEC) < 0)
                return -errno;

        /* A GET without NLM_F_ACK gets exactly its answer (or an error), nothing left over to
         * confuse the next request. */
        nl_socket_disable_auto_ack(sk);
        r = nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_dump_message, &c);
        if (r < 0)
                return nlerr_to_errno(r);

        r = rtnl_link_build_get_request(0, ifname, &req);
        if (r < 0)
                return nlerr_to_errno(r);
        r = nl_send_auto(sk, req);
        if (r < 0)
                return nlerr_to_errno(r);
        r = nl_recvmsgs_default(sk);
        if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV)
                return 0; /* ENODEV: no link of that name right now */
        if (r < 0)
                return nlerr_to_errno(r);
        if (c.error < 0)
                return c.error;
        if (!t->present)
                return 0;

        r = nl_rtgen_request(sk, RTM_GETADDR, AF_UNSPEC, NLM_F_DUMP);
        if (r < 0)
                return nlerr_to_errno(r);
        r = nl_recvmsgs_default(sk);
        /* NLE_DUMP_INTR: addresses changed while the kernel dumped them. Each such change is
         * also queued on the event socket and applied right after, so the state converges. */
        if (r < 0 && r != -NLE_DUMP_INTR)
                return nlerr_to_errno(r);
        if (c.error < 0)
                return c.error;

        t->addrs_unknown = false;
        return 0;
}

/* Discards what the event socket holds. After an overrun the queue is followed by a gap, and
 * replaying its old messages on top of a fresh dump could resurrect a deleted address. The
 * queue holds at most SO_RCVBUF bytes of skb truesize (plus one skb), which bounds its
 * payload, so reading twice that much is enough even if the kernel never stops sending. */
static void netwatch_drain(Netwatch *nw) {
        int fd = nl_socket_get_fd(nw->sk), rcvbuf = 0;
        socklen_t l = sizeof(rcvbuf);
        uint64_t limit, total = 0;

        (void) getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &l);
        limit = 2 * (uint64_t) MAX(rcvbuf, 64 * 1024);

        while (total < limit) {
                ssize_t n = recv(fd, nw->buf, NETWATCH_RECV_BUF_SIZE, MSG_DONTWAIT | MSG_TRUNC);

                if (n < 0) {
                        if (errno == EINTR || errno == ENOBUFS)
                                continue;
                        return; /* EAGAIN: empty */
                }
                total += (uint64_t) n + 1;
        }
}

/* Rebuilds the tracker from scratch. On failure the old one stays and need_resync is set. */
static int netwatch_resync(Netwatch *nw) {
        Tracker t = {
                .operstate = IF_OPER_UNKNOWN,
                .last_ifindex = nw->tracker.last_ifindex,
                .n_recreated = nw->tracker.n_recreated,
        };
        int r;

        /* Subscribed before, drained now, dumped next: every change after this point is
         * either in the dump or queued behind it, and replaying it is idempotent. */
        netwatch_drain(nw);

        r = netwatch_dump(nw->ifname, &t);
        if (r < 0) {
                tracker_done(&t);
                nw->need_resync = true;
                return r;
        }

        tracker_done(&nw->tracker);
        nw->tracker = t;
        nw->need_resync = false;
        log_debug("Netlink state of '%s' resynchronized: %s, ifindex %i, %zu addresses.",
                  nw->ifname, t.present ? "present" : "absent", t.ifindex, t.n_addrs);
        return 0;
}

/* One datagram. Returns 1 when one was read, 0 when the socket is empty, -ENOBUFS when
 * messages were lost (overrun, truncation, no memory to record them), other -errno. */
static int netwatch_receive_one(Netwatch *nw) {
        struct sockaddr_nl sa = {};
        struct iovec iov = { .iov_base = nw->buf, .iov_len = NETWATCH_RECV_BUF_SIZE };
        struct msghdr mh = {
                .msg_name = &sa,
                .msg_namelen = sizeof(sa),
                .msg_iov = &iov,
                .msg_iovlen = 1,
        };
        struct nlmsghdr *nlh;
        int remaining, r = 1;
        ssize_t n;

        /* Read the fd directly rather than through nl_recvmsgs(): libnl reports ENOBUFS as
         * NLE_NOMEM (indistinguishable from its own malloc failing) and EAGAIN differently
         * across versions. recvmsg() says exactly what happened. */
        do
                n = recvmsg(nl_socket_get_fd(nw->sk), &mh, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        if (mh.msg_flags & MSG_TRUNC)
                return -ENOBUFS;
        if (sa.nl_pid != 0)
                return 1; /* only the kernel speaks for the kernel */

        remaining = (int) n;
        for (nlh = (struct nlmsghdr *) nw->buf; nlmsg_ok(nlh, remaining);
             nlh = nlmsg_next(nlh, &remaining))
                if (tracker_apply(&nw->tracker, nw->ifname, nlh) < 0)
                        r = -ENOBUFS;

        return r;
}

static int on_netlink_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Netwatch *nw = userdata;
        NetState before = nw->state;
        int r;

        if (nw->need_resync) {
                r = netwatch_resync(nw);
                if (r < 0)
                        log_warning_errno(r,
                                          "Failed to resynchronize netlink state of '%s', "
                                          "retrying on the next event: %m",
                                          nw->ifname);
        }

        for (unsigned i = 0; i < NETWATCH_RECV_BATCH; i++) {
                r = netwatch_receive_one(nw);
                if (r == 0)
                        break;
                if (r > 0 && nw->tracker.addrs_unknown) {
                        /* Not a loss, so not counted: a new link of our name. For a fresh TUN
                         * this dump finds no addresses, for a renamed link it finds its own. */
                        r = netwatch_resync(nw);
                        if (r < 0) {
                                log_warning_errno(r,
                                                  "Failed to read addresses of '%s', "
                                                  "retrying on the next event: %m",
                                                  nw->ifname);
                                break;
                        }
                        continue;
                }
                if (r == -ENOBUFS) {
                        nw->n_resyncs++;
                        log_notice("Netlink messages lost (receive buffer overrun), "
                                   "resynchronizing state of '%s'.",
                                   nw->ifname);
                        r = netwatch_resync(nw);
                        if (r < 0) {
                                log_warning_errno(r,
                                                  "Failed to resynchronize netlink state of "
                                                  "'%s', retrying on the next event: %m",
                                                  nw->ifname);
                                break;
                        }
                        continue;
                }
                if (r < 0) {
                        log_warning_errno(r, "Failed to read netlink events, ignoring: %m");
                        break;
                }
        }

        tracker_to_state(&nw->tracker, &nw->state);
        if (!netstate_equal(&before, &nw->state) && nw->handler)
                nw->handler(nw, nw->userdata); /* last: the handler may do anything */

        return 0;
}

static bool ifname_valid(const char *ifname) {
        return !isempty(ifname) && strlen(ifname) < IFNAMSIZ;
}

int netwatch_new(const char *ifname, NetwatchHandler handler, void *userdata, Netwatch **ret) {
        Netwatch *nw;

        if (!ifname_valid(ifname) || !ret)
                return -EINVAL;

        nw = calloc(1, sizeof(Netwatch));
        if (!nw)
                return -ENOMEM;

        strcpy(nw->ifname, ifname);
        nw->handler = handler;
        nw->userdata = userdata;
        nw->rcvbuf = NETWATCH_RCVBUF_DEFAULT;
        nw->tracker.operstate = IF_OPER_UNKNOWN;
        tracker_to_state(&nw->tracker, &nw->state);

        *ret = nw;
        return 0;
}

int netwatch_attach(Netwatch *nw, sd_event *e) {
        _cleanup_(nl_socket_freep) struct nl_sock *sk = NULL;
        int r, fd;

        if (!nw || !e)
                return -EINVAL;
        if (nw->sk)
                return -EBUSY;

        if (!nw->buf) {
                nw->buf = malloc(NETWATCH_RECV_BUF_SIZE);
                if (!nw->buf)
                        return -ENOMEM;
        }

        sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        /* Multicast events carry no sequence numbers of ours. */
        nl_socket_disable_seq_check(sk);

        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0)
                return nlerr_to_errno(r);
        fd = nl_socket_get_fd(sk);
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return -errno;

        r = nl_socket_set_nonblocking(sk);
        if (r < 0)
                return nlerr_to_errno(r);
        r = nl_socket_add_memberships(sk, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR,
                                      0);
        if (r < 0)
                return nlerr_to_errno(r);

        /* NETLINK_NO_ENOBUFS stays off: an overrun must be reported so we resync. */
        r = nl_socket_set_buffer_size(sk, nw->rcvbuf, 0);
        if (r < 0)
                log_debug("Failed to set netlink receive buffer, ignoring: %s", nl_geterror(r));
        r = socket_set_rcvbuf(fd, nw->rcvbuf);
        if (r < 0)
                log_debug_errno(r, "Failed to force netlink receive buffer, ignoring: %m");

        nw->sk = TAKE_PTR(sk);

        r = netwatch_resync(nw);
        if (r < 0)
                goto fail;

        r = sd_event_add_io(e, &nw->io, fd, EPOLLIN, on_netlink_io, nw);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(nw->io, "netwatch");

        tracker_to_state(&nw->tracker, &nw->state);
        return 0;

fail:
        nl_socket_free(nw->sk);
        nw->sk = NULL;
        nw->need_resync = false;
        return r;
}

int netwatch_set_rcvbuf(Netwatch *nw, int bytes) {
        if (!nw || bytes <= 0)
                return -EINVAL;

        nw->rcvbuf = bytes;
        if (!nw->sk)
                return 0;
        return socket_set_rcvbuf(nl_socket_get_fd(nw->sk), bytes);
}

int netwatch_set_ifname(Netwatch *nw, const char *ifname) {
        NetState before;
        int r;

        if (!nw || !ifname_valid(ifname))
                return -EINVAL;
        if (streq(nw->ifname, ifname))
                return 0;

        before = nw->state;
        strcpy(nw->ifname, ifname);

        /* Another interface: nothing we knew applies, and its index is no "recreation". */
        tracker_link_gone(&nw->tracker);
        nw->tracker.last_ifindex = 0;

        if (nw->sk) {
                r = netwatch_resync(nw);
                if (r < 0) {
                        tracker_to_state(&nw->tracker, &nw->state);
                        return r;
                }
        }

        tracker_to_state(&nw->tracker, &nw->state);
        return netstate_equal(&before, &nw->state) ? 0 : 1;
}

const NetState *netwatch_get_state(const Netwatch *nw) {
        return &nw->state;
}

uint64_t netwatch_get_resyncs(const Netwatch *nw) {
        return nw->n_resyncs;
}

Netwatch *netwatch_free(Netwatch *nw) {
        if (!nw)
                return NULL;

        sd_event_source_disable_unref(nw->io);
        nl_socket_free(nw->sk);
        tracker_done(&nw->tracker);
        free(nw->buf);
        free(nw);
        return NULL;
}
