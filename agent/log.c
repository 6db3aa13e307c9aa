/* SPDX-License-Identifier: MIT */
/*
 * Logging for the agent: one message per call, either to journald with structured fields
 * (sd_journal_sendv) or as one "LEVEL: message [KEY=value ...]" line on stderr. Owns the log
 * target and the max level (process-global by nature). Does not decide what is worth logging,
 * and common/ never calls it.
 */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <systemd/sd-journal.h>

#include "util.h"
#include "log.h"

/* A journald message can be large, but a log line that long is a bug or hostile input. */
#define LOG_MESSAGE_MAX 4096
/* One stderr line, fields included. Longer lines are cut and end in "...\n". */
#define LOG_LINE_MAX 4096
/* More fields than this in one message are dropped (journald and humans both suffer). */
#define LOG_FIELDS_MAX 32

#define SYSLOG_IDENTIFIER "k0s-tsagent"
/* Where sd_journal_sendv() sends; it reports success when this is missing (it "fails silently
 * if the journal is not available"), so we look first and keep the message on stderr. */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

typedef enum LogTarget {
        LOG_TARGET_STDERR,
        LOG_TARGET_JOURNAL,
} LogTarget;

/* Safe defaults before log_open(): stderr, info. */
static LogTarget log_target = LOG_TARGET_STDERR;
static int log_max_level = LOG_INFO;

static const char *const level_names[] = {
        [LOG_EMERG] = "EMERG", [LOG_ALERT] = "ALERT",     [LOG_CRIT] = "CRIT",
        [LOG_ERR] = "ERR",     [LOG_WARNING] = "WARNING", [LOG_NOTICE] = "NOTICE",
        [LOG_INFO] = "INFO",   [LOG_DEBUG] = "DEBUG",
};

static int level_from_string(const char *s) {
        static const struct {
                const char *name;
                int level;
        } table[] = {
                { "emerg", LOG_EMERG },  { "alert", LOG_ALERT },   { "crit", LOG_CRIT },
                { "err", LOG_ERR },      { "error", LOG_ERR },     { "warning", LOG_WARNING },
                { "warn", LOG_WARNING }, { "notice", LOG_NOTICE }, { "info", LOG_INFO },
                { "debug", LOG_DEBUG },
        };
        unsigned u;

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (strcasecmp(s, table[i].name) == 0)
                        return table[i].level;

        if (safe_atou(s, &u) >= 0 && u <= LOG_DEBUG)
                return (int) u;

        return -EINVAL;
}

/* systemd sets JOURNAL_STREAM=DEV:INODE for a service whose stdout/stderr is a journal stream.
 * Only trust it if our stderr still is that very file (a child may have redirected it). */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        _cleanup_free_ char *dev_str = NULL;
        const char *colon;
        uint64_t dev, ino;
        struct stat st;

        if (isempty(e))
                return false;

        colon = strchr(e, ':');
        if (!colon)
                return false;

        dev_str = strndup(e, colon - e);
        if (!dev_str)
                return false;

        if (safe_atou64(dev_str, &dev) < 0 || safe_atou64(colon + 1, &ino) < 0)
                return false;

        if (fstat(STDERR_FILENO, &st) < 0)
                return false;

        return (uint64_t) st.st_dev == dev && (uint64_t) st.st_ino == ino;
}

void log_open(void) {
        const char *e;
        int level;

        e = getenv("K0S_TSAGENT_LOG");
        if (e && streq(e, "journal"))
                log_target = LOG_TARGET_JOURNAL;
        else if (e && streq(e, "stderr"))
                log_target = LOG_TARGET_STDERR;
        else
                log_target = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;

        /* Only an explicit setting overrides what the caller may already have chosen. */
        e = getenv("K0S_TSAGENT_LOG_LEVEL");
        if (!isempty(e)) {
                level = level_from_string(e);
                if (level < 0)
                        log_warning("Unknown K0S_TSAGENT_LOG_LEVEL='%s', ignoring.", e);
                else
                        log_max_level = level;
        }
}

bool log_is_journal(void) {
        return log_target == LOG_TARGET_JOURNAL;
}

void log_set_max_level(int level) {
        log_max_level = MIN(MAX(level, LOG_EMERG), LOG_DEBUG);
}

int log_get_max_level(void) {
        return log_max_level;
}

static int log_to_journal(int level, int error, const char *message_id, const char *const *fields,
                          const char *message) {
        char message_field[sizeof("MESSAGE=") + LOG_MESSAGE_MAX];
        char priority_field[sizeof("PRIORITY=") + 16];
        char errno_field[sizeof("ERRNO=") + 16];
        char message_id_field[sizeof("MESSAGE_ID=") + 64];
        struct iovec iov[5 + LOG_FIELDS_MAX];
        size_t n = 0;

        if (access(JOURNAL_SOCKET, F_OK) < 0)
                return -errno;

#define IOV_PUSH_STRING(s) \
        iov[n++] = (struct iovec){ .iov_base = (char *) (s), .iov_len = strlen(s) }

        (void) snprintf(message_field, sizeof(message_field), "MESSAGE=%s", message);
        IOV_PUSH_STRING(message_field);
        (void) snprintf(priority_field, sizeof(priority_field), "PRIORITY=%d", level);
        IOV_PUSH_STRING(priority_field);
        IOV_PUSH_STRING("SYSLOG_IDENTIFIER=" SYSLOG_IDENTIFIER);
        if (error != 0) {
                (void) snprintf(errno_field, sizeof(errno_field), "ERRNO=%d", error);
                IOV_PUSH_STRING(errno_field);
        }
        if (!isempty(message_id)) {
                (void) snprintf(message_id_field, sizeof(message_id_field), "MESSAGE_ID=%s",
                                message_id);
                IOV_PUSH_STRING(message_id_field);
        }
        for (size_t i = 0; fields && i < LOG_FIELDS_MAX && fields[i]; i++)
                IOV_PUSH_STRING(fields[i]);
#undef IOV_PUSH_STRING

        /* Fails on a malformed field (no '='): the caller falls back to stderr so the message
         * is never lost. */
        return sd_journal_sendv(iov, (int) n);
}

typedef struct LineBuffer {
        char buf[LOG_LINE_MAX];
        size_t len;
        bool truncated;
} LineBuffer;

/* Appends s, turning control characters into spaces: a message may quote untrusted text, and
 * a newline in it must not forge a second log line. Leaves room for "...\n". */
static void line_append(LineBuffer *l, const char *s) {
        const size_t limit = sizeof(l->buf) - 4;

        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;

                if (l->len >= limit) {
                        l->truncated = true;
                        return;
                }
                l->buf[l->len++] = (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : (char) c;
        }
}

static void log_to_stderr(int level, const char *const *fields, const char *message) {
        LineBuffer l = { .len = 0 };
        const char *p;
        size_t left;

        line_append(&l, level_names[level]);
        line_append(&l, ": ");
        line_append(&l, message);
        if (fields && fields[0]) {
                line_append(&l, " [");
                for (size_t i = 0; i < LOG_FIELDS_MAX && fields[i]; i++) {
                        if (i > 0)
                                line_append(&l, " ");
                        line_append(&l, fields[i]);
                }
                line_append(&l, "]");
        }
        if (l.truncated) {
                memcpy(l.buf + l.len, "...", 3);
                l.len += 3;
        }
        l.buf[l.len++] = '\n';

        /* One write() per line, so lines of concurrent writers (k0s shares our stderr only when
         * not under systemd) do not interleave; loop only for the rare short write. */
        for (p = l.buf, left = l.len; left > 0;) {
                ssize_t k = write(STDERR_FILENO, p, left);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return; /* nowhere left to report it */
                }
                p += k;
                left -= (size_t) k;
        }
}

_printf_(5, 0) static int log_dispatch(int level, int error, const char *message_id,
                                       const char *const *fields, const char *fmt, va_list ap) {
        char message[LOG_MESSAGE_MAX];
        int saved_errno = errno;
        int ret;

        /* abs(INT_MIN) is undefined; no errno is that large anyway. */
        if (error == INT_MIN)
                error = EINVAL;
        error = abs(error);
        ret = -error;

        level = LOG_PRI(level);
        if (level > log_max_level)
                goto finish;

        /* glibc's printf expands %m from errno. */
        errno = error;
        (void) vsnprintf(message, sizeof(message), fmt, ap);

        if (log_target == LOG_TARGET_JOURNAL &&
            log_to_journal(level, error, message_id, fields, message) >= 0)
                goto finish;

        log_to_stderr(level, fields, message);

finish:
        errno = saved_errno;
        return ret;
}

int log_full_errno(int level, int error, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_dispatch(level, error, NULL, NULL, fmt, ap);
        va_end(ap);
        return r;
}

int log_struct_errno(int level, int error, const char *message_id, const char *const *fields,
                     const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_dispatch(level, error, message_id, fields, fmt, ap);
        va_end(ap);
        return r;
}

void log_new_lines(int level, char ***logged, char *const *now) {
        if (strv_equal(now, *logged))
                return;
        for (char *const *l = now; l && *l; l++)
                if (!strv_contains(*logged, *l))
                        log_full_errno(level, 0, "%s", *l);
        char **copy = strv_copy(now);
        if (!copy)
                return; /* keep the old set: at worst a line is logged twice */
        strv_free(*logged);
        *logged = copy;
}
