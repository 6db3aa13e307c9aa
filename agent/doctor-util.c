/* SPDX-License-Identifier: MIT */
/*
 * doctor's small effects: running helper programs (iptables-save, nft, k0s) in parallel with a
 * deadline through execve (no shell), and reading a link's state. No checks live here.
 */

#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "event-util.h"
#include "doctor.h"
#include "util.h"

/* fork + execve with stdout on a pipe, exactly fds 0-2 in the child. */
static int spawn(char *const argv[], pid_t *ret_pid, int *ret_fd) {
        int p[2], devnull;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0) {
                close(p[0]);
                close(p[1]);
                return -errno;
        }
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(p[0]);
                close(p[1]);
                close(devnull);
                return r;
        }
        if (pid == 0) {
                if (dup2(devnull, 0) < 0 || dup2(p[1], 1) < 0 || dup2(devnull, 2) < 0)
                        _exit(126);
                close_range(3, ~0U, 0);
                char *const envp[] = { (char *) "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                                       (char *) "LC_ALL=C", NULL };
                execve(argv[0], argv, envp);
                _exit(errno == ENOENT ? 127 : 126);
        }
        close(p[1]);
        close(devnull);
        (void) fcntl(p[0], F_SETFL, O_NONBLOCK);
        *ret_pid = pid;
        *ret_fd = p[0];
        return 0;
}

static void reap(pid_t pid, bool kill_it, int *status) {
        int st;
        if (kill_it)
                (void) kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR) {
                        *status = -errno;
                        return;
                }
        if (kill_it)
                *status = -ETIMEDOUT;
        else if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
                *status = -ENOENT;
        else
                *status = st;
}

/* One poll round over the still-open pipes; returns how many are open. */
static size_t pump(size_t n, int fd[], StrBuf buf[], size_t max, int timeout_ms) {
        struct pollfd pfd[16];
        size_t open_n = 0, map[16];
        for (size_t i = 0; i < n; i++)
                if (fd[i] >= 0) {
                        pfd[open_n] = (struct pollfd){ .fd = fd[i], .events = POLLIN };
                        map[open_n++] = i;
                }
        if (open_n == 0 || poll(pfd, open_n, timeout_ms) <= 0)
                return open_n;
        for (size_t j = 0; j < open_n; j++) {
                size_t i = map[j];
                char tmp[65536];
                if (!pfd[j].revents)
                        continue;
                ssize_t k = read(fd[i], tmp, sizeof(tmp));
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k > 0 && buf[i].len + (size_t) k <= max &&
                    strbuf_append_n(&buf[i], tmp, (size_t) k) >= 0)
                        continue;
                if (k > 0) /* over max: stop reading, the result is refused */
                        strbuf_done(&buf[i]);
                close(fd[i]);
                fd[i] = -1;
        }
        return open_n;
}

void doctor_run_many(char *const *const argvs[], size_t n, uint64_t timeout_usec, size_t max,
                     char *out[], int status[]) {
        pid_t pid[16];
        int fd[16];
        StrBuf buf[16] = {};
        uint64_t deadline = usec_add(now_usec(CLOCK_MONOTONIC), timeout_usec);

        n = MIN(n, ELEMENTSOF(pid));
        for (size_t i = 0; i < n; i++) {
                out[i] = NULL;
                status[i] = spawn(argvs[i], &pid[i], &fd[i]);
                if (status[i] < 0) {
                        pid[i] = 0;
                        fd[i] = -1;
                }
        }
        for (;;) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        break;
                int ms = (int) MIN((deadline - now) / USEC_PER_MSEC + 1, 1000);
                if (pump(n, fd, buf, max, ms) == 0)
                        break;
        }
        for (size_t i = 0; i < n; i++) {
                if (!pid[i])
                        continue;
                bool timed_out = fd[i] >= 0;
                if (fd[i] >= 0)
                        close(fd[i]);
                reap(pid[i], timed_out, &status[i]);
                out[i] = buf[i].s ? buf[i].s : status[i] >= 0 ? strdup("") : NULL;
        }
}

void doctor_link_done(DoctorLink *l) {
        l->ipv4 = strv_free(l->ipv4);
        l->ipv6 = strv_free(l->ipv6);
}

unsigned doctor_link_mtu(const char *name) {
        struct ifreq ifr = {};
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        unsigned mtu = 0;
        if (fd < 0)
                return 0;
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        if (ioctl(fd, SIOCGIFMTU, &ifr) >= 0 && ifr.ifr_mtu > 0)
                mtu = (unsigned) ifr.ifr_mtu;
        close(fd);
        return mtu;
}

int doctor_link_load(const char *name, DoctorLink *ret) {
        struct ifaddrs *ifa = NULL;
        DoctorLink l = { .ipv4 = calloc(1, sizeof(char *)), .ipv6 = calloc(1, sizeof(char *)) };
        if (!l.ipv4 || !l.ipv6 || getifaddrs(&ifa) < 0) {
                doctor_link_done(&l);
                *ret = (DoctorLink){ .ipv4 = calloc(1, sizeof(char *)),
                                     .ipv6 = calloc(1, sizeof(char *)) };
                return -errno ?: -ENOMEM;
        }
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                char a[INET6_ADDRSTRLEN];
                if (!streq(i->ifa_name, name))
                        continue;
                l.present = true;
                /* a live TUN is oper UNKNOWN with LOWER_UP: IFF_RUNNING carries that */
                l.up = (i->ifa_flags & IFF_UP) && (i->ifa_flags & IFF_RUNNING);
                if (!i->ifa_addr)
                        continue;
                if (i->ifa_addr->sa_family == AF_INET &&
                    inet_ntop(AF_INET, &((struct sockaddr_in *) i->ifa_addr)->sin_addr, a,
                              sizeof(a)))
                        (void) strv_extend(&l.ipv4, a);
                else if (i->ifa_addr->sa_family == AF_INET6 &&
                         !IN6_IS_ADDR_LINKLOCAL(
                                 &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr) &&
                         inet_ntop(AF_INET6, &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr, a,
                                   sizeof(a)))
                        (void) strv_extend(&l.ipv6, a);
        }
        freeifaddrs(ifa);
        if (!l.present)
                l.present = if_nametoindex(name) > 0;
        if (l.present)
                l.mtu = doctor_link_mtu(name);
        *ret = l;
        return 0;
}

uint64_t doctor_parse_rfc3339(const char *s) {
        struct tm tm = {};
        const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
        long off = 0;
        if (!p || tm.tm_year + 1900 <= 1)
                return 0;
        if (*p == '.')
                p += 1 + strspn(p + 1, "0123456789");
        if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
                unsigned h, m;
                char hh[3] = { p[1], p[2], 0 }, mm[3] = { p[4], p[5], 0 };
                if (safe_atou(hh, &h) < 0 || safe_atou(mm, &m) < 0)
                        return 0;
                off = (*p == '+' ? 1 : -1) * (long) (h * 3600 + m * 60);
        } else if (!streq(p, "Z"))
                return 0;
        time_t t = timegm(&tm) - off;
        return t <= 0 ? 0 : (uint64_t) t * USEC_PER_SEC;
}

/* Blocking calls with a 1 s timeout each: doctor is a one-shot CLI, not the daemon. */
int doctor_unit_state(const char *unit, char **ret_file_state, char **ret_active_state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *file = NULL, *active = NULL;
        const char *s, *path;
        int r;

        if (sd_bus_open_system(&bus) < 0)
                return -ENXIO;
        (void) sd_bus_set_method_call_timeout(bus, USEC_PER_SEC);
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "GetUnitFileState", NULL, &reply,
                               "s", unit);
        if (r >= 0 && sd_bus_message_read(reply, "s", &s) >= 0)
                file = strdup(s);
        else
                file = strdup("not-found");
        reply = sd_bus_message_unref(reply);
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "LoadUnit", NULL, &reply, "s",
                               unit);
        if (r < 0)
                return r == -ENOENT || r == -ECONNREFUSED ? -ENXIO : r;
        if ((r = sd_bus_message_read(reply, "o", &path)) < 0)
                return r;
        r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path,
                                       "org.freedesktop.systemd1.Unit", "ActiveState", NULL,
                                       &active);
        if (r < 0)
                return r;
        if (!file)
                return -ENOMEM;
        *ret_file_state = TAKE_PTR(file);
        *ret_active_state = TAKE_PTR(active);
        return 0;
}
