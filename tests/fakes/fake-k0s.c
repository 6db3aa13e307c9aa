/* SPDX-License-Identifier: MIT */
/*
 * Stand-in for the k0s binary in tests: `version`, and `worker|controller` runs that record start
 * (with the descriptors they inherited), signals and exit as JSON lines, follow a small control
 * file, and serve the status socket. Its built-in version can be patched in a copy of the binary.
 * The contract is tests/fakes/README.md. libc only and one poll() loop, so it starts as fast as
 * a real binary and never races with itself.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_VERSION "v1.35.7+k0s.0"
#define MAX_CLIENTS 16
#define REQUEST_MAX 8192
#define MAX_FDS 256

/* The built-in version, behind a marker: a test copies this binary and overwrites the bytes after
 * the marker (NUL-padded, up to 63 bytes in all) to get a real, different binary that reports
 * another version, as an upgrade would put in place. Read through a volatile pointer, so the
 * compiler cannot fold the literal into the code. $FAKE_K0S_VERSION still overrides it. */
#define VERSION_MARKER "@@FAKE_K0S_VERSION@@"
static const char version_blob[64] __attribute__((used)) = VERSION_MARKER DEFAULT_VERSION;

/* The descriptors this process had when it started (before it opened any itself). */
static int start_fds[MAX_FDS];
static int n_start_fds;

typedef struct Buf {
        char *p;
        size_t len, cap;
} Buf;

typedef struct Control {
        bool exit_set;
        int exit_code;
        long exit_after_ms;
        bool ignore_term;
        bool term_delay_set;
        long term_delay_ms;
} Control;

typedef struct Client {
        int fd;
        size_t len;
        char req[REQUEST_MAX];
} Client;

static int log_fd = -1;
static const char *status_socket;
static bool status_hang;
static int n_args;
static char **args;
static bool role_controller;

static _Noreturn void die(const char *what) {
        fprintf(stderr, "fake-k0s: %s: %s\n", what, strerror(errno));
        exit(99);
}

static void buf_put(Buf *b, const char *s, size_t n) {
        if (b->len + n + 1 > b->cap) {
                size_t cap = (b->len + n + 1) * 2;
                char *p = realloc(b->p, cap);
                if (!p)
                        die("realloc");
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
}

static void buf_puts(Buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3))) buf_printf(Buf *b, const char *fmt, ...) {
        char small[256];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(small, sizeof(small), fmt, ap);
        va_end(ap);
        if (n < 0)
                die("vsnprintf");
        if ((size_t) n < sizeof(small)) {
                buf_put(b, small, (size_t) n);
                return;
        }
        char *big = malloc((size_t) n + 1);
        if (!big)
                die("malloc");
        va_start(ap, fmt);
        (void) vsnprintf(big, (size_t) n + 1, fmt, ap);
        va_end(ap);
        buf_put(b, big, (size_t) n);
        free(big);
}

/* A JSON string literal. Bytes >= 0x80 pass through as they are (UTF-8 in, UTF-8 out). */
static void buf_json_string(Buf *b, const char *s) {
        buf_puts(b, "\"");
        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                switch (*c) {
                case '"':
                        buf_puts(b, "\\\"");
                        break;
                case '\\':
                        buf_puts(b, "\\\\");
                        break;
                case '\n':
                        buf_puts(b, "\\n");
                        break;
                case '\r':
                        buf_puts(b, "\\r");
                        break;
                case '\t':
                        buf_puts(b, "\\t");
                        break;
                default:
                        if (*c < 0x20)
                                buf_printf(b, "\\u%04x", *c);
                        else
                                buf_put(b, (const char *) c, 1);
                }
        }
        buf_puts(b, "\"");
}

static void buf_json_strv(Buf *b, char **l, int n) {
        buf_puts(b, "[");
        for (int i = 0; n < 0 ? l[i] != NULL : i < n; i++) {
                if (i > 0)
                        buf_puts(b, ",");
                buf_json_string(b, l[i]);
        }
        buf_puts(b, "]");
}

static const char *builtin_version(void) {
        static char buf[sizeof(version_blob)];

        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = ((const volatile char *) version_blob)[i];
        buf[sizeof(buf) - 1] = 0;
        return buf + strlen(VERSION_MARKER);
}

static const char *version(void) {
        const char *v = getenv("FAKE_K0S_VERSION");
        return v ? v : builtin_version();
}

/* /proc/self/fd, without the directory's own descriptor. First thing in main(). */
static void record_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;

        if (!d)
                die("/proc/self/fd");
        while ((de = readdir(d)) && n_start_fds < MAX_FDS) {
                char *end;
                long fd;

                if (de->d_name[0] == '.')
                        continue;
                fd = strtol(de->d_name, &end, 10);
                if (*end == 0 && fd != dirfd(d))
                        start_fds[n_start_fds++] = (int) fd;
        }
        (void) closedir(d);
        /* readdir order is the kernel's: sort, so logs compare as lists. */
        for (int i = 1; i < n_start_fds; i++)
                for (int j = i; j > 0 && start_fds[j - 1] > start_fds[j]; j--) {
                        int t = start_fds[j];
                        start_fds[j] = start_fds[j - 1];
                        start_fds[j - 1] = t;
                }
}

static void buf_json_fds(Buf *b) {
        buf_puts(b, ",\"fds\":[");
        for (int i = 0; i < n_start_fds; i++)
                buf_printf(b, "%s%d", i > 0 ? "," : "", start_fds[i]);
        buf_puts(b, "]");
}

/* $FAKE_K0S_PIDFILE: what that file holds at start (null if it cannot be read), so tests see
 * whether the k0s pidfile already named this process when it began to run. */
static void buf_pidfile(Buf *b) {
        const char *path = getenv("FAKE_K0S_PIDFILE");
        char content[4096];
        ssize_t n = -1;
        int fd;

        if (!path)
                return;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                n = read(fd, content, sizeof(content) - 1);
                (void) close(fd);
        }
        buf_puts(b, ",\"pidfile\":");
        if (n < 0) {
                buf_puts(b, "null");
                return;
        }
        content[n] = 0;
        buf_json_string(b, content);
}

static void buf_time(Buf *b, const struct timespec *ts) {
        buf_printf(b, "%lld.%06ld", (long long) ts->tv_sec, ts->tv_nsec / 1000);
}

static long long now_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One write() per line with O_APPEND: lines from several fakes never interleave. */
static void log_event(Buf *b) {
        if (log_fd < 0)
                return;
        buf_puts(b, "}\n");
        if (write(log_fd, b->p, b->len) != (ssize_t) b->len)
                die("write log");
}

static void log_begin(Buf *b, const char *event, const struct timespec *when) {
        struct timespec now;

        if (!when) {
                (void) clock_gettime(CLOCK_REALTIME, &now);
                when = &now;
        }
        b->len = 0;
        buf_puts(b, "{\"event\":");
        buf_json_string(b, event);
        buf_printf(b, ",\"pid\":%d,\"time\":", (int) getpid());
        buf_time(b, when);
}

static const char *signal_name(int sig) {
        switch (sig) {
        case SIGTERM:
                return "SIGTERM";
        case SIGINT:
                return "SIGINT";
        case SIGHUP:
                return "SIGHUP";
        case SIGQUIT:
                return "SIGQUIT";
        case SIGUSR1:
                return "SIGUSR1";
        case SIGUSR2:
                return "SIGUSR2";
        default:
                return "SIGUNKNOWN";
        }
}

static _Noreturn void do_exit(int code) {
        Buf b = {};

        log_begin(&b, "exit", NULL);
        buf_printf(&b, ",\"code\":%d", code);
        log_event(&b);
        free(b.p);
        if (status_socket)
                (void) unlink(status_socket);
        exit(code);
}

static bool parse_long(const char *s, long *ret) {
        char *end;
        long v;

        if (!s)
                return false;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != 0)
                return false;
        *ret = v;
        return true;
}

static void parse_control(const char *path, Control *c) {
        char line[256];
        FILE *f;

        f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT)
                        return;
                die(path);
        }
        while (fgets(line, sizeof(line), f)) {
                char *save = NULL, *word = strtok_r(line, " \t\r\n", &save);
                char *a1 = word ? strtok_r(NULL, " \t\r\n", &save) : NULL;
                char *a2 = a1 ? strtok_r(NULL, " \t\r\n", &save) : NULL;
                long v1 = 0, v2 = 0;

                if (!word || word[0] == '#')
                        continue;
                if (strcmp(word, "ignore-term") == 0)
                        c->ignore_term = true;
                else if (strcmp(word, "term-delay") == 0 && parse_long(a1, &v1)) {
                        c->term_delay_set = true;
                        c->term_delay_ms = v1;
                } else if ((strcmp(word, "exit") == 0 || strcmp(word, "once-exit") == 0) &&
                           parse_long(a1, &v1) && parse_long(a2, &v2)) {
                        if (strcmp(word, "once-exit") == 0) {
                                char done[PATH_MAX];
                                int fd;

                                (void) snprintf(done, sizeof(done), "%s.done", path);
                                fd = open(done, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                                if (fd < 0) {
                                        if (errno == EEXIST)
                                                continue; /* applied by an earlier start */
                                        die(done);
                                }
                                (void) close(fd);
                        }
                        c->exit_set = true;
                        c->exit_code = (int) v1;
                        c->exit_after_ms = v2;
                } else {
                        fprintf(stderr, "fake-k0s: %s: bad line '%s'\n", path, word);
                        exit(98);
                }
        }
        (void) fclose(f);
}

static bool has_arg(const char *flag) {
        size_t n = strlen(flag);

        for (int i = 2; i < n_args; i++)
                if (strncmp(args[i], flag, n) == 0 &&
                    (args[i][n] == 0 || strcmp(args[i] + n, "=true") == 0))
                        return true;
        return false;
}

/* K0sStatus as k0s's status component serves it: Go field names, no json tags. */
static void status_body(Buf *b) {
        bool single = role_controller && has_arg("--single");
        bool workloads = !role_controller || single || has_arg("--enable-worker");

        buf_puts(b, "{\"Version\":");
        buf_json_string(b, version());
        /* The real server never fills PPid, SysInit, StubFile or Output. */
        buf_printf(b, ",\"Pid\":%d,\"PPid\":0,\"Role\":\"%s\"", (int) getpid(),
                   role_controller ? "controller" : "worker");
        buf_printf(b, ",\"SysInit\":\"\",\"StubFile\":\"\",\"Output\":\"\"");
        buf_printf(b, ",\"Workloads\":%s,\"SingleNode\":%s,\"Args\":", workloads ? "true" : "false",
                   single ? "true" : "false");
        buf_json_strv(b, args, n_args);
        buf_puts(b, ",\"WorkerToAPIConnectionStatus\":{\"Message\":\"\",\"Success\":true}");
        buf_puts(b,
                 ",\"ClusterConfig\":null,\"K0sVars\":{\"DataDir\":\"/var/lib/k0s\","
                 "\"RunDir\":\"/run/k0s\",\"StatusSocketPath\":");
        buf_json_string(b, status_socket);
        buf_puts(b, "}}");
}

static void client_close(Client *c) {
        (void) close(c->fd);
        c->fd = -1;
        c->len = 0;
}

static void client_answer(Client *c) {
        Buf body = {}, resp = {};
        size_t off = 0;

        status_body(&body);
        buf_printf(&resp,
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                   body.len);
        buf_put(&resp, body.p, body.len);
        /* Blocking for the few KiB of the answer: it fits the socket buffer. */
        (void) fcntl(c->fd, F_SETFL, 0);
        while (off < resp.len) {
                ssize_t n = send(c->fd, resp.p + off, resp.len - off, MSG_NOSIGNAL);
                if (n <= 0)
                        break;
                off += (size_t) n;
        }
        free(body.p);
        free(resp.p);
        client_close(c);
}

static void client_read(Client *c) {
        char scratch[1024];
        ssize_t n;

        if (status_hang) {
                /* Accept and read, never answer; close only when the peer does. */
                n = read(c->fd, scratch, sizeof(scratch));
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                        client_close(c);
                return;
        }
        n = read(c->fd, c->req + c->len, sizeof(c->req) - 1 - c->len);
        if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        client_close(c);
                return;
        }
        c->len += (size_t) n;
        c->req[c->len] = 0;
        if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n") || c->len == sizeof(c->req) - 1 ||
            n == 0)
                client_answer(c);
}

/* Bound and listening under a temporary name, then renamed into place: once the path exists,
 * connects succeed (tests wait for the path, not for a refused connect to stop). */
static int listen_status_socket(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, n;

        n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d.tmp", path, (int) getpid());
        if (n < 0 || (size_t) n >= sizeof(sa.sun_path)) {
                errno = ENAMETOOLONG;
                die(path);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                die("socket");
        (void) unlink(sa.sun_path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                die(sa.sun_path);
        if (listen(fd, 16) < 0)
                die("listen");
        /* Replaces a stale socket from a killed run. */
        if (rename(sa.sun_path, path) < 0)
                die(path);
        return fd;
}

static _Noreturn void run(int argc, char **argv, const struct timespec *t0) {
        long long start_ms = now_ms(), term_exit_at = -1, exit_at = -1;
        Client clients[MAX_CLIENTS];
        const char *path;
        bool terminating = false;
        Control ctl = {};
        sigset_t mask;
        int sfd, lfd = -1;
        Buf b = {};

        n_args = argc;
        args = argv;
        role_controller = strcmp(argv[1], "controller") == 0;

        path = getenv("FAKE_K0S_LOG");
        if (path) {
                log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
                if (log_fd < 0)
                        die(path);
        }

        /* Signals first, so one that arrives during start-up is still seen and logged. */
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) sigaddset(&mask, SIGHUP);
        (void) sigaddset(&mask, SIGQUIT);
        (void) sigaddset(&mask, SIGUSR1);
        (void) sigaddset(&mask, SIGUSR2);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                die("sigprocmask");
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0)
                die("signalfd");

        log_begin(&b, "start", t0);
        buf_printf(&b, ",\"ppid\":%d,\"argv\":", (int) getppid());
        buf_json_strv(&b, argv, argc);
        buf_puts(&b, ",\"env\":");
        buf_json_strv(&b, environ, -1);
        buf_json_fds(&b);
        buf_pidfile(&b);
        log_event(&b);

        path = getenv("FAKE_K0S_CONTROL");
        if (path)
                parse_control(path, &ctl);
        if (ctl.exit_set)
                exit_at = start_ms + ctl.exit_after_ms;

        status_socket = getenv("FAKE_K0S_STATUS_SOCKET");
        status_hang = getenv("FAKE_K0S_STATUS_HANG") != NULL;
        if (status_socket)
                lfd = listen_status_socket(status_socket);
        for (int i = 0; i < MAX_CLIENTS; i++)
                clients[i].fd = -1;

        for (;;) {
                struct pollfd pfd[2 + MAX_CLIENTS];
                int idx[2 + MAX_CLIENTS];
                long long now = now_ms(), deadline = -1;
                int n = 0, timeout;

                if (exit_at >= 0 && now >= exit_at)
                        do_exit(ctl.exit_code);
                if (term_exit_at >= 0 && now >= term_exit_at)
                        do_exit(0);
                if (exit_at >= 0)
                        deadline = exit_at;
                if (term_exit_at >= 0 && (deadline < 0 || term_exit_at < deadline))
                        deadline = term_exit_at;
                timeout = deadline < 0 ? -1 : (int) (deadline - now);

                pfd[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
                if (lfd >= 0)
                        pfd[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
                for (int i = 0; i < MAX_CLIENTS; i++)
                        if (clients[i].fd >= 0) {
                                idx[n] = i;
                                pfd[n++] = (struct pollfd){ .fd = clients[i].fd, .events = POLLIN };
                        }
                if (poll(pfd, (nfds_t) n, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        die("poll");
                }

                if (pfd[0].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                                int sig = (int) si.ssi_signo;

                                log_begin(&b, "signal", NULL);
                                buf_puts(&b, ",\"signal\":");
                                buf_json_string(&b, signal_name(sig));
                                log_event(&b);
                                if (sig != SIGTERM && sig != SIGINT)
                                        continue;
                                if (ctl.ignore_term)
                                        continue;
                                if (terminating) {
                                        /* Like k0s: the handler is gone after the first
                                         * signal, the second one kills without cleanup. */
                                        (void) signal(sig, SIG_DFL);
                                        (void) sigprocmask(SIG_UNBLOCK, &mask, NULL);
                                        (void) raise(sig);
                                        _exit(128 + sig);
                                }
                                terminating = true;
                                if (!ctl.term_delay_set)
                                        do_exit(0);
                                term_exit_at = now_ms() + ctl.term_delay_ms;
                        }
                }
                for (int i = 1; i < n; i++) {
                        if (!pfd[i].revents)
                                continue;
                        if (pfd[i].fd == lfd) {
                                int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                                int slot = -1;

                                if (cfd < 0)
                                        continue;
                                for (int j = 0; j < MAX_CLIENTS && slot < 0; j++)
                                        if (clients[j].fd < 0)
                                                slot = j;
                                if (slot < 0) {
                                        (void) close(cfd);
                                        continue;
                                }
                                clients[slot].fd = cfd;
                                clients[slot].len = 0;
                        } else
                                client_read(&clients[idx[i]]);
                }
        }
}

/* A `version` run leaves one line in the log, so tests see what it inherited. */
static void log_version_run(const struct timespec *t0) {
        const char *path = getenv("FAKE_K0S_LOG");
        Buf b = {};

        if (!path)
                return;
        log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (log_fd < 0)
                die(path);
        log_begin(&b, "version", t0);
        buf_printf(&b, ",\"ppid\":%d,\"version\":", (int) getppid());
        buf_json_string(&b, version());
        buf_json_fds(&b);
        log_event(&b);
        free(b.p);
        (void) close(log_fd);
        log_fd = -1;
}

int main(int argc, char **argv) {
        struct timespec t0;

        /* First thing: tests measure restart delays between these timestamps. */
        (void) clock_gettime(CLOCK_REALTIME, &t0);
        record_fds();

        if (argc >= 2 && strcmp(argv[1], "version") == 0) {
                log_version_run(&t0);
                if (getenv("FAKE_K0S_VERSION_FAIL")) {
                        fprintf(stderr, "Error: fake-k0s: version failure requested\n");
                        return 1;
                }
                if (getenv("FAKE_K0S_VERSION_HANG"))
                        for (;;)
                                (void) pause();
                printf("%s\n", version());
                return fflush(stdout) == 0 ? 0 : 1;
        }
        if (argc >= 2 && (strcmp(argv[1], "worker") == 0 || strcmp(argv[1], "controller") == 0)) {
                /* Like k0s, say something on stdout: the agent sends it to the journal. */
                printf("fake-k0s %s: starting (pid %d)\n", argv[1], (int) getpid());
                (void) fflush(stdout);
                run(argc, argv, &t0);
        }

        fprintf(stderr, "Error: fake-k0s: unknown command (want version, worker or controller)\n");
        return 1;
}
