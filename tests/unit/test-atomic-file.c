/* SPDX-License-Identifier: MIT */
/*
 * atomic-file: write-if-changed (same inode and mtime when unchanged), replacement by rename,
 * temp-file naming and cleanup, and failure paths on real file systems: a 64k tmpfs that runs
 * out of space, a read-only tmpfs and one without /proc (the named-temp-file fallback), each in
 * a private mount namespace of a forked child.
 * Also read_file_full limits, mkdir_parents and path_join_root.
 */

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic-file.h"
#include "macro.h"
#include "util.h"

static char *tmpdir;

static void setup(void) {
        _cleanup_free_ char *t =
                strdup_printf("%s/test-atomic-file.XXXXXX", getenv("TMPDIR") ?: "/tmp");

        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_nonnull(mkdtemp(t));
        tmpdir = TAKE_PTR(t);
}

static void teardown(void) {
        _cleanup_free_ char *cmd = strdup_printf("rm -rf -- '%s'", tmpdir);

        if (cmd)
                (void) system(cmd);
        free(tmpdir);
        tmpdir = NULL;
}

static char *in_tmp(const char *name) {
        char *p = strdup_printf("%s/%s", tmpdir, name);
        ck_assert_ptr_nonnull(p);
        return p;
}

/* Number of ".#..." temp files left in dir. */
static int count_temp_files(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (startswith(de->d_name, ".#"))
                        n++;
        closedir(d);
        return n;
}

static bool file_equals(const char *path, const char *want) {
        _cleanup_free_ char *got = NULL;
        size_t len;

        if (read_file_full(path, 16 * 1024 * 1024, &got, &len) < 0)
                return false;
        return len == strlen(want) && memcmp(got, want, len) == 0;
}

START_TEST(test_create_and_mode) {
        _cleanup_free_ char *p = in_tmp("a.toml");
        struct stat st;
        mode_t old = umask(077);

        /* the requested mode wins over the umask */
        ck_assert_int_eq(atomic_file_write(p, "hello\n", 6, 0644), 1);
        umask(old);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert(S_ISREG(st.st_mode));
        ck_assert_uint_eq(st.st_mode & 07777, 0644);
        ck_assert(file_equals(p, "hello\n"));
        ck_assert_int_eq(count_temp_files(tmpdir), 0);
}
END_TEST

START_TEST(test_unchanged_not_touched) {
        _cleanup_free_ char *p = in_tmp("b.toml");
        struct timespec past[2] = { { .tv_sec = 1000000000, .tv_nsec = 123 },
                                    { .tv_sec = 1000000000, .tv_nsec = 123 } };
        struct stat st1, st2;

        ck_assert_int_eq(atomic_file_write(p, "same", 4, 0600), 1);
        /* an old mtime makes any rewrite visible regardless of timestamp granularity */
        ck_assert_int_eq(utimensat(AT_FDCWD, p, past, 0), 0);
        ck_assert_int_eq(stat(p, &st1), 0);

        ck_assert_int_eq(atomic_file_write(p, "same", 4, 0600), 0);
        ck_assert_int_eq(stat(p, &st2), 0);
        ck_assert_uint_eq(st1.st_ino, st2.st_ino);
        ck_assert_int_eq(st2.st_mtim.tv_sec, 1000000000);
        ck_assert_int_eq(st2.st_mtim.tv_nsec, 123);
        ck_assert_int_eq(count_temp_files(tmpdir), 0);
}
END_TEST

START_TEST(test_changed_rewritten) {
        _cleanup_free_ char *p = in_tmp("c.toml");
        struct stat st1, st2;

        ck_assert_int_eq(atomic_file_write(p, "one", 3, 0644), 1);
        ck_assert_int_eq(stat(p, &st1), 0);
        /* same length, different bytes */
        ck_assert_int_eq(atomic_file_write(p, "two", 3, 0644), 1);
        ck_assert_int_eq(stat(p, &st2), 0);
        ck_assert_uint_ne(st1.st_ino, st2.st_ino);
        ck_assert(file_equals(p, "two"));
        /* a prefix of the old content is a change too */
        ck_assert_int_eq(atomic_file_write(p, "tw", 2, 0644), 1);
        ck_assert(file_equals(p, "tw"));
        ck_assert_int_eq(atomic_file_write(p, "", 0, 0644), 1);
        ck_assert(file_equals(p, ""));
        ck_assert_int_eq(atomic_file_write(p, NULL, 0, 0644), 0);
        ck_assert_int_eq(count_temp_files(tmpdir), 0);
}
END_TEST

START_TEST(test_mode_change_rewrites) {
        _cleanup_free_ char *p = in_tmp("d.toml");
        struct stat st1, st2;

        ck_assert_int_eq(atomic_file_write(p, "x", 1, 0644), 1);
        ck_assert_int_eq(stat(p, &st1), 0);
        ck_assert_int_eq(atomic_file_write(p, "x", 1, 0600), 1);
        ck_assert_int_eq(stat(p, &st2), 0);
        ck_assert_uint_ne(st1.st_ino, st2.st_ino);
        ck_assert_uint_eq(st2.st_mode & 07777, 0600);
        ck_assert_int_eq(atomic_file_write(p, "x", 1, 0600), 0);
}
END_TEST

START_TEST(test_large_content) {
        _cleanup_free_ char *p = in_tmp("large");
        _cleanup_free_ char *data = malloc(300000), *back = NULL;
        size_t len;

        ck_assert_ptr_nonnull(data);
        for (size_t i = 0; i < 300000; i++)
                data[i] = (char) ('a' + i % 26);
        ck_assert_int_eq(atomic_file_write(p, data, 300000, 0644), 1);
        ck_assert_int_eq(atomic_file_write(p, data, 300000, 0644), 0);
        data[299999] = '!'; /* a difference past the first read chunk */
        ck_assert_int_eq(atomic_file_write(p, data, 300000, 0644), 1);
        ck_assert_int_eq(read_file_full(p, 300000, &back, &len), 0);
        ck_assert_uint_eq(len, 300000);
        ck_assert(memcmp(back, data, len) == 0);
}
END_TEST

START_TEST(test_parents_created) {
        _cleanup_free_ char *p = in_tmp("x/y/registry.tailnet.test:5000/hosts.toml");
        _cleanup_free_ char *d = in_tmp("x/y/registry.tailnet.test:5000");
        struct stat st;

        ck_assert_int_eq(atomic_file_write(p, "server = \"x\"\n", 13, 0644), 1);
        ck_assert_int_eq(stat(d, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert(file_equals(p, "server = \"x\"\n"));
}
END_TEST

START_TEST(test_symlink_replaced) {
        _cleanup_free_ char *p = in_tmp("link.toml"), *target = in_tmp("target");

        ck_assert_int_eq(atomic_file_write(target, "target", 6, 0644), 1);
        ck_assert_int_eq(symlink(target, p), 0);
        /* even with the target's content: the path becomes a regular file of its own */
        ck_assert_int_eq(atomic_file_write(p, "target", 6, 0644), 1);
        ck_assert_int_eq(atomic_file_write(p, "new", 3, 0644), 1);
        ck_assert(file_equals(target, "target"));
        ck_assert(file_equals(p, "new"));
}
END_TEST

START_TEST(test_errors_leave_no_temp) {
        _cleanup_free_ char *dir = in_tmp("adir"), *file = in_tmp("afile");
        _cleanup_free_ char *under = in_tmp("afile/sub.toml");

        ck_assert_int_eq(mkdir(dir, 0755), 0);
        /* rename of a file over a directory fails after the temp file was written */
        ck_assert_int_eq(atomic_file_write(dir, "x", 1, 0644), -EISDIR);
        ck_assert_int_eq(count_temp_files(tmpdir), 0);

        ck_assert_int_eq(atomic_file_write(file, "f", 1, 0644), 1);
        ck_assert_int_eq(atomic_file_write(under, "x", 1, 0644), -ENOTDIR);
        ck_assert(file_equals(file, "f"));

        ck_assert_int_eq(atomic_file_write("", "x", 1, 0644), -EINVAL);
        ck_assert_int_eq(atomic_file_write(dir, NULL, 1, 0644), -EINVAL);
        ck_assert_int_eq(count_temp_files(tmpdir), 0);
}
END_TEST

START_TEST(test_temp_name) {
        _cleanup_free_ char *p = in_tmp("registry.toml");
        _cleanup_close_ int fd = -1;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool saw_temp = false;
        ssize_t n;

        /* Watch the directory: k0s globs *.toml there, so the temp file must not match. */
        fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(inotify_add_watch(fd, tmpdir, IN_CREATE | IN_MOVED_TO), 0);
        ck_assert_int_eq(atomic_file_write(p, "x", 1, 0644), 1);

        n = read(fd, buf, sizeof(buf));
        ck_assert_int_gt(n, 0);
        for (char *q = buf; q < buf + n;) {
                struct inotify_event *ev = (struct inotify_event *) q;
                size_t l = strlen(ev->name);

                if (ev->mask & IN_CREATE) {
                        ck_assert_msg(startswith(ev->name, ".#registry.toml."), "temp %s",
                                      ev->name);
                        ck_assert(l < 5 || !streq(ev->name + l - 5, ".toml"));
                        ck_assert(l < 5 || !streq(ev->name + l - 5, ".yaml"));
                        saw_temp = true;
                }
                if (ev->mask & IN_MOVED_TO)
                        ck_assert_str_eq(ev->name, "registry.toml");
                q += sizeof(*ev) + ev->len;
        }
        ck_assert(saw_temp);
}
END_TEST

/* --- failures on real file systems, in a private mount namespace ---------------------------- */

#define CHILD_SKIP 77

static int write_proc(const char *path, const char *text) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (write(fd, text, strlen(text)) != (ssize_t) strlen(text))
                return -EIO;
        return 0;
}

static int write_proc_id(const char *path, unsigned id) {
        char line[64];

        (void) snprintf(line, sizeof(line), "0 %u 1", id);
        return write_proc(path, line);
}

/* In a forked child: a private mount namespace (as root, or else in a user namespace) with a
 * tmpfs on dir. Returns 0, or CHILD_SKIP if namespaces are not allowed here. */
static int child_mount_tmpfs(const char *dir, const char *opts) {
        if (unshare(CLONE_NEWNS) < 0) {
                if (errno != EPERM)
                        return 1;
                uid_t uid = getuid();
                gid_t gid = getgid();

                if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                        return CHILD_SKIP;
                /* map ourselves to root in there, or files on the tmpfs cannot be created */
                if (write_proc("/proc/self/setgroups", "deny") < 0 ||
                    write_proc_id("/proc/self/uid_map", uid) < 0 ||
                    write_proc_id("/proc/self/gid_map", gid) < 0)
                        return CHILD_SKIP;
        }
        /* private, so nothing we mount shows up in the host's namespace */
        if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
                return 2;
        if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
                return errno == EPERM ? CHILD_SKIP : 3;
        return 0;
}

static void run_child(int (*fn)(const char *), const char *what) {
        _cleanup_free_ char *dir = in_tmp("mnt");
        int status;
        pid_t pid;

        ck_assert_int_eq(mkdir(dir, 0755), 0);
        fflush(NULL);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                /* valgrind checks the child for leaks too */
                int r = fn(dir);
                free(dir);
                _exit(r);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        if (WEXITSTATUS(status) == CHILD_SKIP) {
                printf("SKIP: %s: mount namespaces are not allowed here\n", what);
                return;
        }
        ck_assert_msg(WEXITSTATUS(status) == 0, "%s: child failed at step %d", what,
                      WEXITSTATUS(status));
        /* the mount died with the child's namespace: nothing left behind */
        ck_assert_int_eq(count_temp_files(dir), 0);
}

static int enospc_child(const char *dir) {
        char path[4096], *big;
        int r;

        r = child_mount_tmpfs(dir, "size=64k,mode=0755");
        if (r != 0)
                return r;
        (void) snprintf(path, sizeof(path), "%s/registry.toml", dir);

        if (atomic_file_write(path, "old content\n", 12, 0644) != 1)
                return 10;
        big = malloc(1024 * 1024);
        if (!big)
                return 11;
        memset(big, 'x', 1024 * 1024);
        r = atomic_file_write(path, big, 1024 * 1024, 0644);
        free(big);
        if (r != -ENOSPC)
                return 12;
        if (!file_equals(path, "old content\n"))
                return 13;
        if (count_temp_files(dir) != 0)
                return 14;
        /* the space is back: a small write still works */
        if (atomic_file_write(path, "new\n", 4, 0644) != 1 || !file_equals(path, "new\n"))
                return 15;
        if (count_temp_files(dir) != 0)
                return 16;
        return 0;
}

START_TEST(test_enospc) {
        run_child(enospc_child, "ENOSPC on a 64k tmpfs");
}
END_TEST

static int erofs_child(const char *dir) {
        char path[4096], sub[4096];
        int r;

        r = child_mount_tmpfs(dir, "size=64k,mode=0755");
        if (r != 0)
                return r;
        (void) snprintf(path, sizeof(path), "%s/registry.toml", dir);
        (void) snprintf(sub, sizeof(sub), "%s/certs.d/x:1/hosts.toml", dir);

        if (atomic_file_write(path, "old\n", 4, 0644) != 1)
                return 10;
        /* root ignores 0555 on directories; a read-only remount stops it */
        if (mount("none", dir, "tmpfs", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
                return errno == EPERM ? CHILD_SKIP : 11;
        if (atomic_file_write(path, "new\n", 4, 0644) != -EROFS)
                return 12;
        if (!file_equals(path, "old\n"))
                return 13;
        /* nothing to write: an unchanged file is fine even on a read-only file system */
        if (atomic_file_write(path, "old\n", 4, 0644) != 0)
                return 14;
        if (atomic_file_write(sub, "x", 1, 0644) != -EROFS)
                return 15;
        if (count_temp_files(dir) != 0)
                return 16;
        return 0;
}

START_TEST(test_erofs) {
        run_child(erofs_child, "read-only tmpfs");
}
END_TEST

static int no_proc_child(const char *dir) {
        char path[4096];
        struct stat st;
        int r;

        /* Without /proc the O_TMPFILE inode cannot be linked: the named temp file path runs. */
        r = child_mount_tmpfs(dir, "size=64k,mode=0755");
        if (r != 0)
                return r;
        /* an empty tmpfs over /proc: unlike umount, this also works in a user namespace, where
         * the inherited /proc mount is locked */
        if (mount("tmpfs", "/proc", "tmpfs", MS_NOSUID | MS_NODEV, "size=4k") < 0)
                return errno == EPERM ? CHILD_SKIP : 10;
        if (access("/proc/self/fd", F_OK) == 0)
                return 11;
        (void) snprintf(path, sizeof(path), "%s/registry.toml", dir);

        if (atomic_file_write(path, "one\n", 4, 0640) != 1 || !file_equals(path, "one\n"))
                return 12;
        if (stat(path, &st) < 0 || (st.st_mode & 07777) != 0640)
                return 13;
        if (atomic_file_write(path, "one\n", 4, 0640) != 0)
                return 14;
        if (atomic_file_write(path, "two\n", 4, 0640) != 1 || !file_equals(path, "two\n"))
                return 15;
        if (count_temp_files(dir) != 0)
                return 16;
        return 0;
}

START_TEST(test_no_proc_fallback) {
        run_child(no_proc_child, "write without /proc");
}
END_TEST

/* --- read_file_full ------------------------------------------------------------------------ */

START_TEST(test_read_file_full) {
        _cleanup_free_ char *p = in_tmp("r"), *empty = in_tmp("empty"), *fifo = in_tmp("fifo");
        _cleanup_free_ char *missing = in_tmp("missing");
        char *got = (char *) "untouched";
        size_t len = 4242;

        ck_assert_int_eq(atomic_file_write(p, "0123456789", 10, 0644), 1);
        ck_assert_int_eq(read_file_full(p, 10, &got, &len), 0);
        ck_assert_uint_eq(len, 10);
        ck_assert_str_eq(got, "0123456789"); /* NUL-terminated */
        free(got);
        got = (char *) "untouched";
        len = 4242;

        ck_assert_int_eq(read_file_full(p, 9, &got, &len), -EFBIG);
        ck_assert_int_eq(read_file_full(p, 0, &got, &len), -EFBIG);
        ck_assert_int_eq(read_file_full(tmpdir, 100, &got, &len), -EISDIR);
        ck_assert_int_eq(read_file_full(missing, 100, &got, &len), -ENOENT);
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        /* refused without blocking on the open */
        ck_assert_int_eq(read_file_full(fifo, 100, &got, &len), -EBADFD);
        ck_assert_int_eq(read_file_full("/dev/null", 100, &got, &len), -EBADFD);
        ck_assert_int_eq(read_file_full("", 100, &got, &len), -EINVAL);
        ck_assert_str_eq(got, "untouched");
        ck_assert_uint_eq(len, 4242);

        ck_assert_int_eq(atomic_file_write(empty, "", 0, 0644), 1);
        ck_assert_int_eq(read_file_full(empty, 0, &got, &len), 0);
        ck_assert_uint_eq(len, 0);
        ck_assert_str_eq(got, "");
        free(got);

        /* ret_len may be NULL */
        ck_assert_int_eq(read_file_full(p, SIZE_MAX, &got, NULL), 0);
        ck_assert_str_eq(got, "0123456789");
        free(got);
}
END_TEST

START_TEST(test_read_file_full_procfs) {
        /* procfs files say st_size 0: the limit must still hold while reading */
        _cleanup_free_ char *got = NULL;
        char *none = NULL;
        size_t len;

        ck_assert_int_eq(read_file_full("/proc/self/status", 1024 * 1024, &got, &len), 0);
        ck_assert_uint_gt(len, 100);
        ck_assert_uint_eq(strlen(got), len);
        ck_assert(startswith(got, "Name:"));
        ck_assert_int_eq(read_file_full("/proc/self/status", 20, &none, &len), -EFBIG);
        ck_assert_ptr_null(none);
}
END_TEST

/* --- mkdir_parents, path_join_root --------------------------------------------------------- */

START_TEST(test_mkdir_parents) {
        _cleanup_free_ char *deep = in_tmp("m/n//o/p/"), *file = in_tmp("m/file");
        _cleanup_free_ char *through = in_tmp("m/file/q"), *pdir = in_tmp("m/n/o/p");
        struct stat st;
        mode_t old = umask(0);

        ck_assert_int_eq(mkdir_parents(deep, 0750), 0);
        umask(old);
        ck_assert_int_eq(stat(pdir, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_uint_eq(st.st_mode & 07777, 0750);
        ck_assert_int_eq(mkdir_parents(deep, 0750), 0); /* exists: fine */
        ck_assert_int_eq(mkdir_parents(tmpdir, 0755), 0);
        ck_assert_int_eq(mkdir_parents("/", 0755), 0);

        ck_assert_int_eq(atomic_file_write(file, "f", 1, 0644), 1);
        ck_assert_int_eq(mkdir_parents(file, 0755), -ENOTDIR);
        ck_assert_int_eq(mkdir_parents(through, 0755), -ENOTDIR);
        ck_assert_int_eq(mkdir_parents("", 0755), -EINVAL);
        ck_assert_int_eq(mkdir_parents(NULL, 0755), -EINVAL);
}
END_TEST

static const struct {
        const char *root, *path, *want;
} joins[] = {
        { "/tmp/x", "/etc/a", "/tmp/x/etc/a" },
        { "/tmp/x/", "/etc/a", "/tmp/x/etc/a" },
        { "/tmp//x//", "//etc///a", "/tmp/x/etc/a" },
        { NULL, "/etc/a", "/etc/a" },
        { "", "/etc/a", "/etc/a" },
        { "/", "/etc/a", "/etc/a" },
        { "//", "/etc/a", "/etc/a" },
        { "/", "//etc//a", "/etc/a" },
        { "/r", "etc/a", "/r/etc/a" },
        { "rel", "/etc/a", "rel/etc/a" },
        { "/r", "/etc/containerd/certs.d/registry.tailnet.test:5000/hosts.toml",
          "/r/etc/containerd/certs.d/registry.tailnet.test:5000/hosts.toml" },
        /* ".." is kept, not resolved (documented) */
        { "/r", "/etc/../a", "/r/etc/../a" },
};

START_TEST(test_path_join_root) {
        _cleanup_free_ char *j = path_join_root(joins[_i].root, joins[_i].path);

        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(j, joins[_i].want);
}
END_TEST

START_TEST(test_path_join_root_null) {
        ck_assert_ptr_null(path_join_root("/r", NULL));
}
END_TEST

static Suite *atomic_file_suite(void) {
        Suite *s = suite_create("atomic-file");
        TCase *tc = tcase_create("write");
        TCase *tf = tcase_create("failures");
        TCase *th = tcase_create("helpers");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_create_and_mode);
        tcase_add_test(tc, test_unchanged_not_touched);
        tcase_add_test(tc, test_changed_rewritten);
        tcase_add_test(tc, test_mode_change_rewrites);
        tcase_add_test(tc, test_large_content);
        tcase_add_test(tc, test_parents_created);
        tcase_add_test(tc, test_symlink_replaced);
        tcase_add_test(tc, test_errors_leave_no_temp);
        tcase_add_test(tc, test_temp_name);
        suite_add_tcase(s, tc);

        tcase_add_checked_fixture(tf, setup, teardown);
        tcase_add_test(tf, test_enospc);
        tcase_add_test(tf, test_erofs);
        tcase_add_test(tf, test_no_proc_fallback);
        suite_add_tcase(s, tf);

        tcase_add_checked_fixture(th, setup, teardown);
        tcase_add_test(th, test_read_file_full);
        tcase_add_test(th, test_read_file_full_procfs);
        tcase_add_test(th, test_mkdir_parents);
        tcase_add_loop_test(th, test_path_join_root, 0, (int) ELEMENTSOF(joins));
        tcase_add_test(th, test_path_join_root_null);
        suite_add_tcase(s, th);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(atomic_file_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
