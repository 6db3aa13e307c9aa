/* SPDX-License-Identifier: MIT */
/* files: a registry directory is created with its marker or not at all (ENOSPC on a 64k tmpfs in
 * a private mount namespace), a symlink where a registry directory belongs is reported and
 * nothing is written or removed through it, and the cleanup removes only marked directories. */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"
#include "atomic-file.h"
#include "files.h"
#include "log.h"
#include "render-containerd.h"

#define REG "registry.tailnet.test:5000"

static char *tmpdir;

static void setup(void) {
        char t[] = "/tmp/test-files-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(t));
        tmpdir = strdup(t);
        ck_assert_ptr_nonnull(tmpdir);
        log_set_max_level(LOG_EMERG);
}

static void teardown(void) {
        _cleanup_free_ char *cmd = strdup_printf("rm -rf -- '%s'", tmpdir);
        ck_assert_int_eq(system(cmd), 0);
        free(tmpdir);
        tmpdir = NULL;
}

static char *in_tmp(const char *name) {
        char *p = strdup_printf("%s/%s", tmpdir, name);
        ck_assert_ptr_nonnull(p);
        return p;
}

static AgentConfig *make_config(const char *certs, size_t n_registries) {
        _cleanup_free_ char *text = strdup_printf(
                "containerd:\n  dropin: %s/containerd.d/registry.toml\n  certs_dir: %s\n%s", tmpdir,
                certs,
                n_registries ? "registries:\n  - name: \"" REG "\"\n    endpoints:\n"
                               "      - url: http://100.64.0.99:5000\n"
                             : "");
        FILE *f = fmemopen(text, strlen(text), "r");
        AgentConfig *c = NULL;
        _cleanup_free_ char *error = NULL;
        ck_assert_ptr_nonnull(f);
        ck_assert_msg(config_parse(f, "test.conf", &c, &error) >= 0, "%s", error ?: "?");
        fclose(f);
        return c;
}

/* The plan reconcile would make for make_config(): one hosts.toml, or nothing. */
static Plan *make_plan(const char *certs, bool with_registry) {
        Plan *p = calloc(1, sizeof(Plan));
        ck_assert_ptr_nonnull(p);
        if (!with_registry)
                return p;
        _cleanup_free_ char *dir = strdup_printf("%s/%s", certs, REG);
        p->files = calloc(1, sizeof(PlanFile));
        ck_assert_ptr_nonnull(p->files);
        p->files[0] = (PlanFile){ .path = strdup_printf("%s/hosts.toml", dir),
                                  .contents = strdup("server = \"http://100.64.0.99:5000\"\n"),
                                  .mode = 0644 };
        p->n_files = 1;
        ck_assert_int_ge(strv_extend(&p->registry_dirs, dir), 0);
        return p;
}

/* dir/name (name may be "" for dir itself), not following a final symlink. */
static bool exists(const char *dir, const char *name) {
        _cleanup_free_ char *p = strdup_printf("%s/%s", dir, name);
        struct stat st;
        return lstat(p, &st) >= 0;
}

static size_t count_entries(const char *dir) {
        DIR *d = opendir(dir);
        size_t n = 0;
        struct dirent *de;
        if (!d)
                return 0;
        while ((de = readdir(d)))
                n += !streq(de->d_name, ".") && !streq(de->d_name, "..");
        closedir(d);
        return n;
}

START_TEST(test_create_with_marker_and_cleanup) {
        _cleanup_free_ char *certs = in_tmp("certs.d");
        _cleanup_(config_freep) AgentConfig *c = make_config(certs, 1);
        _cleanup_(config_freep) AgentConfig *c0 = make_config(certs, 0);
        _cleanup_(plan_freep) Plan *p = make_plan(certs, true);
        _cleanup_(plan_freep) Plan *p0 = make_plan(certs, false);
        _cleanup_(files_freep) Files *f = NULL;
        bool ok;

        ck_assert_int_eq(files_new(NULL, &f), 0);
        ck_assert_int_eq(files_apply(f, c, p, &ok), 0);
        ck_assert(exists(certs, REG "/" CERTS_DIR_MARKER_FILE));
        ck_assert(exists(certs, REG "/hosts.toml"));
        ck_assert_int_eq(files_get(f, 0)->result, 1);
        ck_assert_uint_eq(count_entries(certs), 1); /* no temp directory left */

        /* an operator's directory without marker, and a leftover of an interrupted creation */
        _cleanup_free_ char *mine = strdup_printf("%s/operator.example", certs);
        _cleanup_free_ char *tmp = strdup_printf("%s/" REGISTRY_DIR_TEMP_PREFIX "x.1", certs);
        _cleanup_free_ char *tmp_marker = strdup_printf("%s/%s", tmp, CERTS_DIR_MARKER_FILE);
        ck_assert_int_eq(mkdir(mine, 0755), 0);
        ck_assert_int_eq(mkdir(tmp, 0755), 0);
        ck_assert_int_eq(atomic_file_write(tmp_marker, "x", 1, 0644), 1);

        files_cleanup(f, c0, p0);
        ck_assert(!exists(certs, REG));
        ck_assert(exists(certs, "operator.example"));
        ck_assert(!exists(tmp, ""));
}
END_TEST

START_TEST(test_symlink_not_followed) {
        _cleanup_free_ char *certs = in_tmp("certs.d");
        _cleanup_free_ char *elsewhere = in_tmp("elsewhere");
        _cleanup_free_ char *link = strdup_printf("%s/%s", certs, REG);
        _cleanup_free_ char *victim = strdup_printf("%s/hosts.toml", elsewhere);
        _cleanup_free_ char *victim_marker =
                strdup_printf("%s/%s", elsewhere, CERTS_DIR_MARKER_FILE);
        _cleanup_(config_freep) AgentConfig *c = make_config(certs, 1);
        _cleanup_(config_freep) AgentConfig *c0 = make_config(certs, 0);
        _cleanup_(plan_freep) Plan *p = make_plan(certs, true);
        _cleanup_(plan_freep) Plan *p0 = make_plan(certs, false);
        _cleanup_(files_freep) Files *f = NULL;
        bool ok;

        ck_assert_int_eq(mkdir(certs, 0755), 0);
        ck_assert_int_eq(mkdir(elsewhere, 0755), 0);
        ck_assert_int_eq(atomic_file_write(victim, "precious\n", 9, 0644), 1);
        ck_assert_int_eq(atomic_file_write(victim_marker, "x", 1, 0644), 1);
        ck_assert_int_eq(symlink(elsewhere, link), 0);

        ck_assert_int_eq(files_new(NULL, &f), 0);
        ck_assert_int_eq(files_apply(f, c, p, &ok), 1);
        const FileRecord *r = files_get(f, 0);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(r->result, -ELOOP);
        ck_assert_ptr_nonnull(strstr(r->error, "symlink"));
        ck_assert_ptr_nonnull(files_get_error(f));

        _cleanup_free_ char *text = NULL;
        ck_assert_int_eq(read_file_full(victim, 1024, &text, NULL), 0);
        ck_assert_str_eq(text, "precious\n");

        /* the registry leaves: the symlink (whose target carries a marker) is left alone */
        files_cleanup(f, c0, p0);
        struct stat st;
        ck_assert_int_eq(lstat(link, &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        ck_assert(exists(elsewhere, "hosts.toml"));
        ck_assert(exists(elsewhere, CERTS_DIR_MARKER_FILE));
}
END_TEST

/* In a forked child with a private mount namespace: certs_dir on a full 64k tmpfs. */
static int enospc_child(const char *certs) {
        if (unshare(CLONE_NEWNS) < 0)
                return 77;
        if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
                return 2;
        if (mount("tmpfs", certs, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755") < 0)
                return errno == EPERM ? 77 : 3;
        _cleanup_free_ char *fill = strdup_printf("%s/.fill", certs);
        int fd = open(fill, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        char buf[4096] = { 0 };
        while (fd >= 0 && write(fd, buf, sizeof(buf)) > 0)
                ;
        if (fd >= 0)
                close(fd);

        AgentConfig *c = make_config(certs, 1);
        Plan *p = make_plan(certs, true);
        Files *f = NULL;
        bool ok;
        int ret = 0;
        if (files_new(NULL, &f) < 0)
                ret = 4;
        else if (files_apply(f, c, p, &ok) != 1)
                ret = 5; /* the write must fail */
        else if (count_entries(certs) != 1)
                ret = 6; /* only .fill: no registry dir without marker, no temp dir */
        files_free(f);
        plan_free(p);
        config_free(c);
        return ret;
}

START_TEST(test_enospc_leaves_no_unmarked_dir) {
        _cleanup_free_ char *certs = in_tmp("certs.d");
        int status;

        if (geteuid() != 0) {
                printf("SKIP: ENOSPC: needs root for a private mount namespace\n");
                return;
        }
        ck_assert_int_eq(mkdir(certs, 0755), 0);
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(enospc_child(certs));
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77) {
                printf("SKIP: ENOSPC: mount namespaces are not allowed here\n");
                return;
        }
        ck_assert_msg(WEXITSTATUS(status) == 0, "child failed at step %d", WEXITSTATUS(status));
}
END_TEST

static Suite *files_suite(void) {
        Suite *s = suite_create("files");
        TCase *tc = tcase_create("files");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_create_with_marker_and_cleanup);
        tcase_add_test(tc, test_symlink_not_followed);
        tcase_add_test(tc, test_enospc_leaves_no_unmarked_dir);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(files_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
