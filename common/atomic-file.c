/* SPDX-License-Identifier: MIT */
/*
 * Write-if-changed through a temp file and rename, bounded whole-file reads, mkdir -p and
 * root-prefixed paths. Power is cut every week at the sites this runs on: a file the agent
 * writes is either the old one or the new one, never a mix. Deciding what to write is not here.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic-file.h"
#include "macro.h"
#include "util.h"

/* The temp name's copy of the basename is cut here so ".#" + base + ".XXXXXX" fits NAME_MAX. */
#define TEMP_BASENAME_MAX 200

/* Loops over short writes and EINTR. */
static int write_all(int fd, const void *data, size_t len) {
        const char *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Reads up to len bytes; returns the count (< len only at EOF). */
static ssize_t read_full(int fd, void *buf, size_t len) {
        char *p = buf;
        size_t done = 0;

        while (done < len) {
                ssize_t n = read(fd, p + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        return (ssize_t) done;
}

/* 1 if dirfd/name is a regular file (not followed through a symlink) with exactly this content
 * and mode, 0 if not or if it does not exist, -errno on other errors. */
static int file_is_same(int dirfd, const char *name, const void *data, size_t len, mode_t mode) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        const char *want = data;
        size_t off = 0;
        char buf[8192];

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0) {
                /* Missing, or a symlink (ELOOP): either way it gets replaced by a regular file. */
                if (errno == ENOENT || errno == ELOOP)
                        return 0;
                return -errno;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return 0;
        if ((st.st_mode & 07777) != (mode & 07777))
                return 0;
        if (st.st_size < 0 || (unsigned long long) st.st_size != (unsigned long long) len)
                return 0;

        for (;;) {
                ssize_t n = read_full(fd, buf, sizeof(buf));
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
                if ((size_t) n > len - off || memcmp(want + off, buf, (size_t) n) != 0)
                        return 0; /* grew meanwhile, or differs */
                off += (size_t) n;
        }
        return off == len;
}

int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        if (isempty(path))
                return -EINVAL;

        p = strdup(path);
        if (!p)
                return -ENOMEM;

        /* Walk each prefix ending before a '/', then the whole path. */
        for (char *s = p;; s++) {
                bool last = *s == 0;

                if (!last && (*s != '/' || s == p || s[-1] == '/'))
                        continue;

                *s = 0;
                /* stat first: mkdir on a read-only file system may say EROFS even for a
                 * directory that exists. Follows symlinks on purpose: a symlinked
                 * /etc/containerd is fine. */
                if (stat(p, &st) < 0) {
                        if (errno != ENOENT)
                                return -errno;
                        if (mkdir(p, mode) < 0) {
                                if (errno != EEXIST)
                                        return -errno;
                                if (stat(p, &st) < 0) /* lost a race with another mkdir */
                                        return -errno;
                        } else
                                st.st_mode = S_IFDIR;
                }
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
                if (last)
                        break;
                *s = '/';
        }
        return 0;
}

/* ".#<base>.XXXXXX" with six random letters; base is cut so the name fits NAME_MAX. */
static char *temp_name(const char *base) {
        static const char letters[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        uint8_t rnd[6];
        char suffix[7];

        /* Not secret, only unlikely to collide; EEXIST makes the caller try again. */
        if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd)) {
                struct timespec ts;
                (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t x = (uint64_t) ts.tv_nsec ^ ((uint64_t) getpid() << 20);
                for (size_t i = 0; i < sizeof(rnd); i++, x >>= 5)
                        rnd[i] = (uint8_t) x;
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
                suffix[i] = letters[rnd[i] % (sizeof(letters) - 1)];
        suffix[6] = 0;
        return strdup_printf(".#%.*s.%s", TEMP_BASENAME_MAX, base, suffix);
}

/* Gives the O_TMPFILE inode behind fd a temp name in dirfd. linkat(AT_EMPTY_PATH) would need
 * CAP_DAC_READ_SEARCH; the /proc/self/fd link works for anyone who could open the file. */
static int link_temp(int fd, int dirfd, const char *base, char **ret) {
        char proc[64];

        (void) snprintf(proc, sizeof(proc), "/proc/self/fd/%i", fd);
        for (int attempt = 0; attempt < 100; attempt++) {
                _cleanup_free_ char *name = temp_name(base);

                if (!name)
                        return -ENOMEM;
                if (linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) >= 0) {
                        *ret = TAKE_PTR(name);
                        return 0;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

/* The fallback without O_TMPFILE: write, fchmod, fsync a named temp file, then rename. */
static int write_via_named_temp(int dirfd, const char *base, const void *data, size_t len,
                                mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        for (int attempt = 0; fd < 0 && attempt < 100; attempt++) {
                free(tmp);
                tmp = temp_name(base);
                if (!tmp)
                        return -ENOMEM;
                fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0 && errno != EEXIST)
                        return -errno;
        }
        if (fd < 0)
                return -EEXIST;

        r = write_all(fd, data, len);
        if (r >= 0 && fchmod(fd, mode & 07777) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat(dirfd, tmp, dirfd, base) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dirfd, tmp, 0);
                return r;
        }
        if (fsync(dirfd) < 0)
                return -errno;
        return 1;
}

int atomic_file_write(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int dirfd = -1;
        const char *base, *slash;
        int r;

        if (isempty(path) || (!data && len > 0))
                return -EINVAL;

        slash = strrchr(path, '/');
        base = slash ? slash + 1 : path;
        if (isempty(base) || streq(base, ".") || streq(base, ".."))
                return -EISDIR;
        if (!slash)
                dir = strdup(".");
        else if (slash == path)
                dir = strdup("/");
        else
                dir = strndup(path, (size_t) (slash - path));
        if (!dir)
                return -ENOMEM;

        dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0 && errno == ENOENT) {
                r = mkdir_parents(dir, 0755);
                if (r < 0)
                        return r;
                dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (dirfd < 0)
                return -errno;

        return atomic_file_write_at(dirfd, base, data, len, mode);
}

int atomic_file_write_at(int dirfd, const char *base, const void *data, size_t len, mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (isempty(base) || strchr(base, '/') || streq(base, ".") || streq(base, "..") ||
            (!data && len > 0))
                return -EINVAL;

        /* Unchanged files are not touched: k0s restarts containerd on every write to its
         * drop-in directory, and an identical rewrite would still be a write. */
        r = file_is_same(dirfd, base, data, len, mode);
        if (r < 0)
                return r;
        if (r > 0)
                return 0;

        /* The data goes into an unnamed O_TMPFILE inode first: if power is cut while writing
         * or syncing, nothing is left behind. Only the finished file gets a temp name, which
         * starts with ".#" and ends in random letters (k0s globs *.toml in containerd.d: a
         * temp file must never match that), and is renamed over the target at once. File
         * systems without O_TMPFILE get a named temp file from the start. */
        fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) {
                if (errno != EOPNOTSUPP && errno != EISDIR)
                        return -errno;
                return write_via_named_temp(dirfd, base, data, len, mode);
        }

        r = write_all(fd, data, len);
        /* fchmod before fsync so the mode is as durable as the content when the name flips;
         * an explicit fchmod also ignores the umask. */
        if (r >= 0 && fchmod(fd, mode & 07777) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0)
                return r; /* closing fd frees the unnamed inode */

        r = link_temp(fd, dirfd, base, &tmp);
        if (r == -ENOENT) /* no /proc to link through */
                return write_via_named_temp(dirfd, base, data, len, mode);
        if (r < 0)
                return r;
        if (renameat(dirfd, tmp, dirfd, base) < 0) {
                r = -errno;
                (void) unlinkat(dirfd, tmp, 0);
                return r;
        }

        /* The rename is durable only once the directory is. If this fails the new file is
         * already in place; the error is still reported so the caller logs it. */
        if (fsync(dirfd) < 0)
                return -errno;
        return 1;
}

int read_file_full(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t size, len = 0;
        struct stat st;

        if (isempty(path))
                return -EINVAL;
        max = MIN(max, SIZE_MAX - 2); /* room for the probe byte and the NUL */

        /* O_NONBLOCK: opening a FIFO must not hang the caller; it is refused below anyway. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_size > 0 && (unsigned long long) st.st_size > max)
                return -EFBIG;

        /* st_size is only a hint (procfs says 0, files grow): read until EOF, at most max + 1
         * bytes so that a file longer than max is noticed. */
        size = MIN((size_t) st.st_size, max) + 1;
        size = MAX(size, (size_t) MIN(max + 1, (size_t) 4096));
        for (;;) {
                char *t = realloc(buf, size + 1);
                ssize_t n;

                if (!t)
                        return -ENOMEM;
                buf = t;
                n = read_full(fd, buf + len, size - len);
                if (n < 0)
                        return (int) n;
                len += (size_t) n;
                if (len > max)
                        return -EFBIG;
                if (len < size)
                        break; /* EOF */
                size = MIN(size * 2, max + 1);
        }
        buf[len] = 0;

        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

char *path_join_root(const char *root, const char *path) {
        _cleanup_free_ char *j = NULL;
        char *w;

        /* ".." components are kept as they are, not resolved and not refused: the paths come
         * from the validated config, and resolving them lexically would be wrong with
         * symlinks anyway. Duplicate slashes are collapsed so messages show clean paths. */
        if (!path)
                return NULL;
        if (isempty(root) || strspn(root, "/") == strlen(root))
                j = strdup(path);
        else
                j = strdup_printf("%s/%s", root, path);
        if (!j)
                return NULL;

        w = j;
        for (const char *s = j; *s; s++) {
                if (*s == '/' && w > j && w[-1] == '/')
                        continue;
                *w++ = *s;
        }
        *w = 0;
        return TAKE_PTR(j);
}
